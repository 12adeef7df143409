"""The ``function.python`` handler of tests/runner/entries/async_activity (issue 18).

It leaves its activity open with temporalio's own mechanism, after handing its task token out
(base64, as ``flowctl activity`` takes it) in its heartbeat details, where the test reads it.
"""

from __future__ import annotations

import base64
from typing import Any, NoReturn

from temporalio import activity


async def await_payment(_order: Any) -> NoReturn:
    info = activity.info()
    activity.heartbeat({"token": base64.b64encode(info.task_token).decode("ascii"), "attempt": info.attempt})
    activity.raise_complete_async()
