"""SPEC §5.2: escape attempts from the Lua sandbox fail cleanly, each with a precise outcome.

Every case is a Lua function body run as a workflow's main on a real LuaSandbox (no
Temporal needed). ``("value", x)`` means the body returns ``x`` (nil where a name simply
does not exist); ``("error", text)`` means the run fails with a Lua error containing
``text``; ``("limit", name)`` means it fails with LIMIT_EXCEEDED for that limit.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.failures import LimitExceeded, LuaRuntimeError
from runner.sandbox import LuaSandbox


def run(body: str, *, modules: tuple[str, ...] = ("json", "errors"), **limits: int) -> Any:
    sandbox = LuaSandbox(seed=7, memory_limit=limits.get("memory_limit", 32 << 20),
                         instruction_limit=limits.get("instruction_limit", 2_000_000),
                         clock_ns=lambda: 1_700_000_000 * 10**9)
    for name in modules:
        sandbox.add_module(name)
    main = sandbox.entrypoint("return {main = function() " + body + "\nend}", "escape.lua", "main")
    sandbox.begin_task()
    finished, results = sandbox.resume(sandbox.start(main))
    assert finished, f"the body yielded a command: {results!r}"
    return sandbox.export(results[0], "result") if results else None


ESCAPES: list[tuple[str, str, tuple[str, Any]]] = [
    # no I/O, no OS
    ("io global", "return io", ("value", None)),
    ("io.open", "return io.open('/etc/passwd')", ("error", "attempt to index a nil value (global 'io')")),
    ("os.execute", "return os.execute('id')", ("error", "attempt to call a nil value (field 'execute')")),
    ("os.getenv", "return os.getenv('HOME')", ("error", "attempt to call a nil value (field 'getenv')")),
    ("os.remove", "return os.remove('/tmp/x')", ("error", "attempt to call a nil value (field 'remove')")),
    ("os.exit", "return os.exit(1)", ("error", "attempt to call a nil value (field 'exit')")),
    ("os.rename", "return os.rename('a', 'b')", ("error", "attempt to call a nil value (field 'rename')")),
    ("os.tmpname", "return os.tmpname()", ("error", "attempt to call a nil value (field 'tmpname')")),
    ("os keys", "local k = {} for name in pairs(os) do k[#k + 1] = name end return table.concat(k, ',')",
     ("value", "clock,date,time")),
    # no loading of files or other modules
    ("dofile", "return dofile('/etc/passwd')", ("error", "attempt to call a nil value (global 'dofile')")),
    ("loadfile", "return loadfile('/etc/passwd')", ("error", "attempt to call a nil value (global 'loadfile')")),
    ("require os", "return require('os')", ("error", "module 'os' is not available")),
    ("require io", "return require('io')", ("error", "module 'io' is not available")),
    ("require debug", "return require('debug')", ("error", "module 'debug' is not available")),
    ("require package", "return require('package')", ("error", "module 'package' is not available")),
    ("require ffi", "return require('ffi')", ("error", "module 'ffi' is not available")),
    ("require python", "return require('python')", ("error", "module 'python' is not available")),
    ("require unlisted flowctl module", "return require('funcs')", ("error", "module 'funcs' is not available")),
    ("require non-string", "return require({})", ("error", "string expected, got table")),
    ("package global", "return package", ("value", None)),
    ("package.loadlib", "return package.loadlib('libc.so.6', 'system')",
     ("error", "attempt to index a nil value (global 'package')")),
    # no debug library
    ("debug global", "return debug", ("value", None)),
    ("debug.getregistry", "return debug.getregistry()", ("error", "attempt to index a nil value (global 'debug')")),
    ("debug.sethook", "debug.sethook() return 1", ("error", "attempt to index a nil value (global 'debug')")),
    # no bytecode in or out
    ("string.dump", "return string.dump", ("value", None)),
    ("string.dump via method", "return ('x').dump", ("value", None)),
    ("load binary chunk", "local f, e = load(string.char(27) .. 'Lua'); return e",
     ("value", "attempt to load a binary chunk (mode is 't')")),
    ("load mode b", "return load('return 1', 'x', 'b')", ("error", "only text chunks are allowed")),
    ("load mode bt", "return load('return 1', 'x', 'bt')", ("error", "only text chunks are allowed")),
    ("load text runs in the sandbox", "return load('return io')()", ("value", None)),
    ("load with a custom env", "local f = load('return x', 'c', 't', {x = 5}) return f()", ("value", 5)),
    ("load env cannot reach real globals", "return load('return _G.io', 'c', 't', {})()",
     ("error", "attempt to index a nil value (global '_G')")),
    ("loadstring", "return loadstring", ("value", None)),
    # the string metatable leads only to the sandbox's string table
    ("string metatable index", "return getmetatable('').__index == string", ("value", True)),
    ("string metatable has no dump", "return getmetatable('').__index.dump", ("value", None)),
    ("rewiring strings stays inside the run", "getmetatable('').__index = {upper = function() return 'x' end} "
     "return ('a'):upper()", ("value", "x")),
    # protected metatables
    ("json.null metatable", "return getmetatable(json.null)", ("value", False)),
    ("json.array metatable", "return getmetatable(json.array({}))", ("value", "json.array")),
    ("error object metatable", "return getmetatable(errors.new('x'))", ("value", "flowctl.Error")),
    ("json.null is constant", "json.null.x = 1", ("error", "json.null is a constant")),
    # globals: _G / _ENV are the sandbox's own
    ("_G is the sandbox", "return _G == _ENV and _G.io == nil", ("value", True)),
    ("rawget _G io", "return rawget(_G, 'io')", ("value", None)),
    ("setmetatable _G fallback", "setmetatable(_G, {__index = function(_, k) return k end}) return io",
     ("value", "io")),
    ("_ENV replaced", "local _ENV = {} return print", ("value", None)),
    # no finalizers or weak tables (GC timing is not deterministic)
    ("__gc refused", "setmetatable({}, {__gc = function() end})", ("error", "__gc finalizers are not allowed")),
    ("__mode refused", "setmetatable({}, {__mode = 'k'})", ("error", "weak tables (__mode) are not allowed")),
    ("collectgarbage stub", "return collectgarbage('count')", ("value", 0)),
    ("collectgarbage stop", "return collectgarbage('stop')", ("value", 0)),
    # coroutine misuse
    ("yield outside a coroutine", "coroutine.yield(1)", ("error", "coroutine.yield() was called outside a coroutine")),
    ("resume dead coroutine", "local co = coroutine.create(function() end) coroutine.resume(co) "
     "local ok, e = coroutine.resume(co) return e", ("value", "cannot resume dead coroutine")),
    ("resume running coroutine", "local co co = coroutine.create(function() return coroutine.resume(co) end) "
     "local ok, inner_ok, e = coroutine.resume(co) return e", ("value", "cannot resume non-suspended coroutine")),
    ("wrap error propagates", "local f = coroutine.wrap(function() error('inside') end) f()", ("error", "inside")),
    ("create non-function", "return coroutine.create(1)", ("error", "function expected")),
    ("nested coroutines work", "local f = coroutine.wrap(function() local g = coroutine.wrap(function() "
     "coroutine.yield(1) end) return g() + 1 end) return f()", ("value", 2)),
    # Python objects are unreachable
    ("python global", "return python", ("value", None)),
    ("python.eval", "return python.eval('1')", ("error", "attempt to index a nil value (global 'python')")),
    ("python via _G", "return _G.python", ("value", None)),
    ("type of every global", "local t = {} for k, v in pairs(_G) do if type(v) == 'userdata' then t[#t+1] = k end end "
     "return #t", ("value", 0)),
    # no addresses
    ("tostring table", "return tostring({})", ("value", "table")),
    ("tostring function", "return tostring(print)", ("value", "function")),
    ("format %s of a table", "return string.format('%s', {})", ("value", "table")),
    ("format %p", "return string.format('%p', {})", ("error", "%p is not available")),
    ("malicious __tostring", "return tostring(setmetatable({}, {__tostring = function() return 42 end}))",
     ("error", "'__tostring' must return a string")),
    # randomness and time come from the run
    ("math.randomseed removed", "return math.randomseed", ("value", None)),
    ("os.time from the driver", "return os.time()", ("value", 1_700_000_000)),
    ("os.date is UTC from the driver", "return os.date('%Y-%m-%d %H:%M')", ("value", "2023-11-14 22:13")),
    ("os.time of a date table is UTC", "return os.time({year = 2024, month = 1, day = 2, hour = 0})",
     ("value", 1_704_153_600)),
    # limits cannot be swallowed
    ("pcall cannot swallow the instruction limit", "pcall(function() while true do end end) return 'escaped'",
     ("limit", "instructions")),
    ("xpcall handler cannot swallow it", "xpcall(function() while true do end end, function() return 'x' end) "
     "return 'escaped'", ("limit", "instructions")),
    ("coroutine cannot swallow it", "coroutine.resume(coroutine.create(function() while true do end end)) "
     "return 'escaped'", ("limit", "instructions")),
    ("string.rep bomb", "return #string.rep('x', 1 << 30)", ("limit", "memory")),
    ("table growth bomb", "local t = {} for i = 1, 1e9 do t[i] = {i} end", ("limit", "memory")),
    ("pcall cannot swallow memory", "pcall(string.rep, 'x', 1 << 30) return 'escaped'", ("limit", "memory")),
    ("deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", ("limit", "stack")),
]


@pytest.mark.parametrize(("body", "expected"), [(body, expected) for _, body, expected in ESCAPES],
                         ids=[name for name, _, _ in ESCAPES])
def test_escape_attempt_fails_cleanly(body: str, expected: tuple[str, Any]) -> None:
    kind, want = expected
    if kind == "value":
        assert run(body) == want
    elif kind == "error":
        with pytest.raises(LuaRuntimeError) as caught:
            run(body)
        assert want in caught.value.message
    else:
        # deep recursion hits Lua's stack limit before a 256 MiB heap fills up
        limits = {"memory_limit": 256 << 20} if want == "stack" else {}
        with pytest.raises(LimitExceeded) as hit:
            run(body, **limits)
        assert hit.value.limit == want
        assert hit.value.kind == "LIMIT_EXCEEDED" and hit.value.retryable is False
        assert "escape.lua:" in hit.value.message, "the failure names the Lua file:line"


def test_there_are_at_least_fifty_escape_attempts() -> None:
    assert len(ESCAPES) >= 50


def test_globals_set_in_one_run_are_invisible_to_another() -> None:
    first = LuaSandbox(seed=1)
    second = LuaSandbox(seed=1)
    first.entrypoint("return {main = function() end}", "a.lua", "main")
    compiled = first.compile("shared_secret = 'leak'; string.leak = true", "a.lua")
    first.begin_task()
    assert first.resume(first.start(compiled))[0]
    probe = second.entrypoint("return {main = function() return {shared_secret, string.leak} end}", "b.lua", "main")
    second.begin_task()
    finished, results = second.resume(second.start(probe))
    assert finished and second.export(results[0], "result") == []
