"""docs/lua-api.md, Empty tables, end to end: json.object() leaves a run as {} (result, activity argument
and result, query answer) and a plain {} as [] (tests/runner/sandbox/test_json_marks.py checks every way out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.projects import APP_HEADER
from tests.support.worker import lua_worker

ENTRIES = APP_HEADER + """\
  - name: shapes
    kind: workflow.lua
    source: file://shapes.lua
    modules: [funcs, json, workflow]
    meta: {temporal: {workflow: {worker: worker}}}
  - name: echo
    kind: function.lua
    source: file://echo.lua
    modules: [json]
    meta: {temporal: {activity: {worker: worker}}}
"""

WORKFLOW = """\
local function main(input)
    workflow.on_query("shape", function()
        return {object = json.object(), array = json.array(), plain = {}}
    end)
    local echoed, err = funcs.call("echo", json.object(), {}, json.object({}))
    if err then return nil, err end
    if input.empty then return json.object() end
    return {echoed = echoed, decoded = json.object(json.decode("[]")), plain = {}}
end

return { main = main }
"""

ACTIVITY = """\
local function main(object, plain, marked)
    return {args = {object, plain, marked}, made = json.object(), text = json.encode({json.object(), {}})}
end

return { main = main }
"""


async def test_json_object_leaves_a_run_as_an_empty_object(dev_server: Any, tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(ENTRIES)
    (tmp_path / "shapes.lua").write_text(WORKFLOW)
    (tmp_path / "echo.lua").write_text(ACTIVITY)
    async with lua_worker(await dev_server.client(), tmp_path) as project:
        assert await project.run("app:shapes", {"empty": True}) == {}
        handle = await project.start("app:shapes", {"empty": False})
        result = await handle.result()
        shape = await handle.query("shape")
    assert result == {"echoed": {"args": [{}, [], {}], "made": {}, "text": "[{},[]]"}, "decoded": {}, "plain": []}
    assert shape == {"object": {}, "array": [], "plain": []}
