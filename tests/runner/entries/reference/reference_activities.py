"""Python activities behind the reference examples.

Every call is appended to ``JOURNAL`` as ``(activity, argument)``, so a test running the
worker in its own process can count how often each activity ran and in which order.
"""

from __future__ import annotations

import threading
from typing import Any

from temporalio.exceptions import ApplicationError

#: (activity name, its argument) for every call, in call order
JOURNAL: list[tuple[str, Any]] = []
_lock = threading.Lock()


def _record(name: str, argument: Any) -> None:
    with _lock:
        JOURNAL.append((name, argument))


def calls(name: str, argument: Any = None) -> list[Any]:
    """The arguments ``name`` was called with (only those matching ``argument`` when given)."""
    with _lock:
        return [arg for called, arg in JOURNAL if called == name and (argument is None or arg == argument)]


def charge_payment(request: dict[str, Any]) -> dict[str, Any]:
    _record("charge_payment", request)
    if request.get("amount", 0) <= 0:
        # a flowctl error kind from Python: the workflow sees err:kind() == "INVALID"
        raise ApplicationError("amount must be positive", type="INVALID", non_retryable=True)
    return {"id": f"pay-{request['customer']}", "amount": request["amount"]}


def ship_order(request: dict[str, Any]) -> dict[str, Any]:
    _record("ship_order", request)
    if not request.get("address"):
        raise ApplicationError(f"order {request['order_id']} has no shipping address", type="INVALID",
                               non_retryable=True)
    return {"tracking_number": f"TRK-{request['order_id']}"}


def refund_payment(payment_id: str) -> dict[str, Any]:
    _record("refund_payment", payment_id)
    return {"refunded": payment_id}


def old_payment(request: dict[str, Any]) -> str:
    _record("old_payment", request)
    return f"old-{request['id']}"


def new_payment(request: dict[str, Any]) -> str:
    _record("new_payment", request)
    return f"new-{request['id']}"


def fetch_data(key: str) -> dict[str, Any]:
    _record("fetch_data", key)
    return {"key": key, "items": [1, 2, 3]}
