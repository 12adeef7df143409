"""The ``ctx`` module as workflow code sees it: the starter's context values, read-only."""

from __future__ import annotations

from tests.support.sandboxes import run_main, shim_run


async def test_get_and_all_read_the_runs_context() -> None:
    run = shim_run(["ctx"], context={"tenant": "t-1", "limits": {"max": 3}, "tags": ["a", "b"]})
    (values,) = await run_main(run, "return {ctx.get('tenant'), ctx.get('limits').max, ctx.get('tags')[2], "
                                    "ctx.get('missing') == nil, ctx.all()}")
    assert run.sandbox.export(values) == ["t-1", 3, "b", True, {"tenant": "t-1", "limits": {"max": 3},
                                                                "tags": ["a", "b"]}]


async def test_changing_what_all_returned_changes_nothing() -> None:
    run = shim_run(["ctx"], context={"tenant": "t-1"})
    (value,) = await run_main(run, "local copy = ctx.all()\ncopy.tenant = 'forged'\nreturn ctx.get('tenant')")
    assert value == "t-1"


async def test_the_context_is_read_once_per_run() -> None:
    run = shim_run(["ctx"], context={"tenant": "t-1"})
    (first,) = await run_main(run, "return ctx.get('tenant')")
    run.context["tenant"] = "t-2"
    (second,) = await run_main(run, "return ctx.get('tenant')")
    assert (first, second) == ("t-1", "t-1")


async def test_an_empty_context() -> None:
    run = shim_run(["ctx"])
    (values,) = await run_main(run, "return {ctx.get('tenant') == nil, next(ctx.all()) == nil}")
    assert run.sandbox.export(values) == [True, True]
