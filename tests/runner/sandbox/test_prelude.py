"""The prelude (runner/sandbox/lua/*.lua) as a whole: what its files share, and what they leave behind.

Its files share names only through the locals 00_shared.lua declares; a name a file sets
without that declaration would become a global of the runtime instead, silently. The real
globals are never user code's, but the prelude must not depend on them after it ran.
"""

from __future__ import annotations

from typing import Any

import lupa.lua54 as lua54

from runner.sandbox.runtime import LuaSandbox


def _global_names(runtime: Any) -> set[str]:
    return set(runtime.execute("local names = {} for k in next, _G do names[#names + 1] = k end "
                               "return table.concat(names, ' ')").split())


def test_the_prelude_adds_no_globals_to_the_runtime() -> None:
    fresh = lua54.LuaRuntime(register_eval=False, register_builtins=False)
    assert _global_names(LuaSandbox().lua) == _global_names(fresh)


def test_user_code_changing_its_libraries_does_not_change_the_prelude() -> None:
    box = LuaSandbox(seed=7)
    box.add_module("json")
    main = box.entrypoint("""return {main = function()
    string.format, table.concat, tostring, next = nil, nil, nil, nil
    getmetatable("").__index = {}
    return json.encode({b = {1, 2.5, "x"}, a = true})
end}""", "wf.lua", "main")
    box.begin_task()
    assert box.resume(box.start(main)) == (True, ('{"a":true,"b":[1,2.5,"x"]}',))
