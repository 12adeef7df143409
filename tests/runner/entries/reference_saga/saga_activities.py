"""The saga's activities: each appends ``(activity, argument)`` to ``JOURNAL`` so tests see the
order in which steps and compensations ran. Failures are driven by the order's data."""

from __future__ import annotations

import threading
from typing import Any

from temporalio.exceptions import ApplicationError

JOURNAL: list[tuple[str, Any]] = []
_lock = threading.Lock()


def _record(name: str, argument: Any) -> None:
    with _lock:
        JOURNAL.append((name, argument))


def journal_of(order_id: str) -> list[str]:
    """The activities that ran for one order, in order (every argument carries the order id)."""
    with _lock:
        return [name for name, arg in JOURNAL if order_id in str(arg)]


def reserve_inventory(items: list[dict[str, Any]]) -> dict[str, Any]:
    _record("reserve_inventory", items)
    if not items:
        raise ApplicationError("nothing to reserve", type="INVALID", non_retryable=True)
    return {"id": "res-" + "-".join(item["sku"] for item in items)}


def release_inventory(reservation_id: str) -> None:
    _record("release_inventory", reservation_id)


def charge_payment(payment: dict[str, Any]) -> dict[str, Any]:
    _record("charge_payment", payment)
    if payment["card"] == "declined":
        raise ApplicationError("card declined", type="PAYMENT_DECLINED", non_retryable=True)
    return {"id": "pay-" + payment["order_id"]}


def refund_payment(payment_id: str) -> None:
    _record("refund_payment", payment_id)


def ship_order(shipping: dict[str, Any]) -> dict[str, Any]:
    _record("ship_order", shipping)
    if shipping["address"] == "":
        raise ApplicationError("no address to ship to", type="INVALID", non_retryable=True)
    return {"tracking": "TRK-" + shipping["order_id"]}
