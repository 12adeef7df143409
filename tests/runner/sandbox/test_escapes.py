"""docs/sandbox.md: escape attempts from the Lua sandbox, each failing cleanly with an exact outcome.

Every case is one line of Lua run as line 2 of ``escape.lua`` on a fresh LuaSandbox (no
Temporal needed). The expected outcome is one of:

- ``("value", x)``: the body returns ``x`` (nil where a name simply does not exist);
- ``("error", text)``: the run stops with a Lua error whose message is exactly ``text``;
- ``("limit", name)``: the run stops with LIMIT_EXCEEDED for that limit at ``escape.lua:2``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from runner.sandbox.failures import LimitExceeded, LuaRuntimeError
from runner.sandbox.runtime import LuaSandbox, SandboxLimits

CLOCK_NS = 1_700_000_000 * 10**9 + 250_000_000  # 2023-11-14T22:13:20.25Z
NOT_AVAILABLE = ("escape.lua:2: module '{}' is not available in this entry: list it under `modules:` "
                 "(available: none listed) or import a library.lua entry under `imports:`")
DRIVER_OWNED = ("escape.lua:2: coroutine.{}: this coroutine belongs to the workflow driver (it runs workflow "
                "code or waits for a command's answer); only flowctl resumes it")


def sandbox(memory: int = 32 << 20, instructions: int = 2_000_000) -> LuaSandbox:
    box = LuaSandbox(seed=7, limits=SandboxLimits(memory=memory, instructions=instructions), clock_ns=lambda: CLOCK_NS)
    box.add_module("json")
    box.add_module("errors")
    return box


def start(box: LuaSandbox, body: str) -> Any:
    main = box.entrypoint("return {main = function()\n" + body + "\nend}", "escape.lua", "main")
    box.begin_task()
    return box.start(main)


def run(body: str, **limits: int) -> Any:
    box = sandbox(**limits)
    finished, results = box.resume(start(box, body))
    assert finished, f"the body yielded a command: {results!r}"
    return box.export(results[0], "result") if results else None


def first_line(exc: LuaRuntimeError) -> str:
    return exc.message.split("\n", 1)[0]


ESCAPES: list[tuple[str, str, tuple[str, Any]]] = [
    # ---- no I/O, no OS beyond the clock shims
    ("io is absent", "return io", ("value", None)),
    ("io.open", "return io.open('/etc/passwd')",
     ("error", "escape.lua:2: attempt to index a nil value (global 'io')")),
    ("io.popen via _G", "return _G.io.popen('id')",
     ("error", "escape.lua:2: attempt to index a nil value (field 'io')")),
    ("os.execute", "return os.execute('id')", ("error", "escape.lua:2: attempt to call a nil value (field 'execute')")),
    ("os.getenv", "return os.getenv('HOME')", ("error", "escape.lua:2: attempt to call a nil value (field 'getenv')")),
    ("os.remove", "return os.remove('/tmp/x')",
     ("error", "escape.lua:2: attempt to call a nil value (field 'remove')")),
    ("os.exit", "return os.exit(1)", ("error", "escape.lua:2: attempt to call a nil value (field 'exit')")),
    ("os.rename", "return os.rename('a', 'b')",
     ("error", "escape.lua:2: attempt to call a nil value (field 'rename')")),
    ("os.tmpname", "return os.tmpname()", ("error", "escape.lua:2: attempt to call a nil value (field 'tmpname')")),
    ("os.setlocale", "return os.setlocale('C')",
     ("error", "escape.lua:2: attempt to call a nil value (field 'setlocale')")),
    ("os has only the clock shims", "local k = {} for name in pairs(os) do k[#k + 1] = name end "
     "return table.concat(k, ',')", ("value", "clock,date,time")),
    # ---- no files, no native modules, no unlisted modules
    ("dofile", "return dofile('/etc/passwd')",
     ("error", "escape.lua:2: attempt to call a nil value (global 'dofile')")),
    ("loadfile", "return loadfile('/etc/passwd')",
     ("error", "escape.lua:2: attempt to call a nil value (global 'loadfile')")),
    ("require os", "local r = require('os') return r", ("error", NOT_AVAILABLE.format("os"))),
    ("require io", "local r = require('io') return r", ("error", NOT_AVAILABLE.format("io"))),
    ("require debug", "local r = require('debug') return r", ("error", NOT_AVAILABLE.format("debug"))),
    ("require package", "local r = require('package') return r", ("error", NOT_AVAILABLE.format("package"))),
    ("require ffi", "local r = require('ffi') return r", ("error", NOT_AVAILABLE.format("ffi"))),
    ("require python", "local r = require('python') return r", ("error", NOT_AVAILABLE.format("python"))),
    ("require lupa", "local r = require('lupa') return r", ("error", NOT_AVAILABLE.format("lupa"))),
    ("require a C module path", "local r = require('socket.core') return r",
     ("error", NOT_AVAILABLE.format("socket.core"))),
    ("require an unlisted flowctl module", "local r = require('funcs') return r",
     ("error", NOT_AVAILABLE.format("funcs"))),
    ("require a non-string", "local r = require({}) return r",
     ("error", "escape.lua:2: bad argument #1 to 'require' (string expected, got table)")),
    ("a listed module is the global", "return require('json') == json", ("value", True)),
    ("package is absent", "return package", ("value", None)),
    ("package.loadlib", "return package.loadlib('libc.so.6', 'system')",
     ("error", "escape.lua:2: attempt to index a nil value (global 'package')")),
    ("package.loaded", "return package.loaded._G",
     ("error", "escape.lua:2: attempt to index a nil value (global 'package')")),
    # ---- no debug library
    ("debug is absent", "return debug", ("value", None)),
    ("debug.getregistry", "return debug.getregistry()",
     ("error", "escape.lua:2: attempt to index a nil value (global 'debug')")),
    ("debug.getupvalue of pairs", "return debug.getupvalue(pairs, 1)",
     ("error", "escape.lua:2: attempt to index a nil value (global 'debug')")),
    ("debug.sethook", "debug.sethook()", ("error", "escape.lua:2: attempt to index a nil value (global 'debug')")),
    # ---- no bytecode in or out
    ("string.dump is absent", "return string.dump", ("value", None)),
    ("string.dump as a method", "return ('x').dump", ("value", None)),
    ("string.dump called", "return string.dump(print)",
     ("error", "escape.lua:2: attempt to call a nil value (field 'dump')")),
    ("load a binary chunk", "local f, e = load(string.char(27) .. 'LuaT\\0\\25\\147') return {f == nil, e}",
     ("value", [True, "attempt to load a binary chunk (mode is 't')"])),
    ("load a binary chunk from a reader", "local parts, i = {string.char(27), 'LuaT'}, 0 "
     "local f, e = load(function() i = i + 1 return parts[i] end) return e",
     ("value", "attempt to load a binary chunk (mode is 't')")),
    ("load mode b", "local r = load('return 1', 'x', 'b') return r",
     ("error", 'escape.lua:2: load: only text chunks are allowed in the sandbox (mode must be "t")')),
    ("load mode bt", "local r = load('return 1', 'x', 'bt') return r",
     ("error", 'escape.lua:2: load: only text chunks are allowed in the sandbox (mode must be "t")')),
    ("a loaded text chunk runs in the sandbox", "return load('return tostring(io) .. tostring(debug) .. "
     "tostring(os.execute)')()", ("value", "nilnilnil")),
    ("a loaded chunk defines sandbox globals", "load('x = 41')() return rawget(_G, 'x') + 1", ("value", 42)),
    ("load with a custom env sees only it", "return load('return x, _G, getmetatable', 'c', 't', {x = 5})()",
     ("value", 5)),
    ("load with an empty env cannot reach _G", "return load('return _G.io', 'c', 't', {})()",
     ("error", "[string \"c\"]:1: attempt to index a nil value (global '_G')")),
    ("load with an env whose __index is a trap", "local env = setmetatable({}, {__index = function(_, k) "
     "return k end}) return load('return io', 'c', 't', env)()", ("value", "io")),
    ("Lua 5.1 loadstring", "return loadstring", ("value", None)),
    ("Lua 5.1 setfenv", "return setfenv", ("value", None)),
    ("Lua 5.1 getfenv", "return getfenv", ("value", None)),
    ("Lua 5.1 module", "return module", ("value", None)),
    # ---- the string metatable leads only to the sandbox's own string table
    ("string metatable __index", "return getmetatable('').__index == string", ("value", True)),
    ("string metatable has no dump", "return getmetatable('').__index.dump", ("value", None)),
    ("string metatable format is the sandbox's", "return getmetatable('').__index.format == string.format",
     ("value", True)),
    ("%p through the string metatable", "local r = ('%p'):format({}) return r",
     ("error", "escape.lua:2: string.format: %p is not available (addresses differ between runs)")),
    # ---- protected metatables
    ("json.null metatable", "return getmetatable(json.null)", ("value", False)),
    ("json.null metatable cannot be replaced", "return setmetatable(json.null, {})",
     ("error", "cannot change a protected metatable")),
    ("json.null is a constant", "json.null.x = 1", ("error", "escape.lua:2: json.null is a constant")),
    ("json.array metatable", "return getmetatable(json.array({}))", ("value", "json.array")),
    ("json.object metatable", "return getmetatable(json.object({}))", ("value", "json.object")),
    ("json.array metatable cannot be replaced", "return setmetatable(json.array({}), nil)",
     ("error", "cannot change a protected metatable")),
    ("decoded arrays are protected too", "return getmetatable(json.decode('[1]'))", ("value", "json.array")),
    ("error object metatable", "return getmetatable(errors.new('x'))", ("value", "flowctl.Error")),
    ("error object metatable cannot be replaced",
     "return setmetatable(errors.new('x'), {__tostring = function() while true do end end})",
     ("error", "cannot change a protected metatable")),
    ("error objects do not hand out their metatable", "return errors.new('x').__index", ("value", None)),
    ("error object methods cannot be rewired", "local e = errors.new('x') e.kind = function() return 'forged' end "
     "return {e:kind(), errors.new('y'):kind()}", ("value", ["forged", "INTERNAL"])),
    ("malicious __tostring result",
     "local r = tostring(setmetatable({}, {__tostring = function() return 42 end})) return r",
     ("error", "escape.lua:2: '__tostring' must return a string")),
    ("error value with a looping __tostring",
     "error(setmetatable({}, {__tostring = function() while true do end end}))",
     ("error", "(error object is a table value)")),
    # ---- globals: _G and _ENV are the sandbox's own
    ("_G is the sandbox env", "return _G == _ENV and rawget(_G, 'io') == nil and rawget(_ENV, 'debug') == nil",
     ("value", True)),
    ("setmetatable on _G reaches nothing", "setmetatable(_G, {__index = function(_, k) return k end}) return io",
     ("value", "io")),
    ("rawset on _G stays in the run", "rawset(_G, 'pairs', nil) return pairs", ("value", None)),
    ("a local _ENV hides everything", "local _ENV = {} return print", ("value", None)),
    ("_G._G removed", "_G._G = nil return _G", ("value", None)),
    # ---- no finalizers; weak tables hold their entries strongly (nothing vanishes at GC time)
    ("__gc refused", "setmetatable({}, {__gc = function() end})",
     ("error", "escape.lua:2: setmetatable: __gc finalizers are not allowed in the sandbox (they run at "
               "garbage-collection time, which is not deterministic)")),
    ("__gc = false refused too", "setmetatable({}, {__gc = false})",
     ("error", "escape.lua:2: setmetatable: __gc finalizers are not allowed in the sandbox (they run at "
               "garbage-collection time, which is not deterministic)")),
    ("__mode accepted, still readable", "local mt = {__mode = 'k'} setmetatable({}, mt) "
     "return mt.__mode .. tostring(rawget(mt, '__mode'))", ("value", "knil")),
    ("collectgarbage count", "return collectgarbage('count')", ("value", 0)),
    ("collectgarbage collect", "return collectgarbage('collect')", ("value", 0)),
    ("collectgarbage stop", "return collectgarbage('stop')", ("value", 0)),
    ("collectgarbage generational", "return collectgarbage('generational')", ("value", 0)),
    # ---- coroutine misuse
    ("yield outside a coroutine", "coroutine.yield(1)",
     ("error", "coroutine.yield() was called outside a coroutine; yield only inside functions run with "
               "coroutine.create/wrap")),
    ("yield through pcall outside a coroutine", "pcall(coroutine.yield, 1)",
     ("error", "coroutine.yield() was called outside a coroutine; yield only inside functions run with "
               "coroutine.create/wrap")),
    ("a forged command yield is just a value", "local f = coroutine.wrap(function() "
     "coroutine.yield({op = 'funcs.call', id = 'x'}) end) return f().op", ("value", "funcs.call")),
    ("a forged command from the main thread", "coroutine.yield({op = 'funcs.call', id = 'x'})",
     ("error", "coroutine.yield() was called outside a coroutine; yield only inside functions run with "
               "coroutine.create/wrap")),
    ("resume a dead coroutine", "local co = coroutine.create(function() end) coroutine.resume(co) "
     "return {coroutine.resume(co)}", ("value", [False, "cannot resume dead coroutine"])),
    ("resume a running coroutine", "local co co = coroutine.create(function() return coroutine.resume(co) end) "
     "return {coroutine.resume(co)}", ("value", [True, False, "cannot resume non-suspended coroutine"])),
    ("call a dead wrap", "local f = coroutine.wrap(function() end) f() f()", ("error", "cannot resume dead coroutine")),
    ("wrap propagates errors", "coroutine.wrap(function() error('inside') end)()", ("error", "escape.lua:2: inside")),
    ("create a non-function", "local r = coroutine.create(1) return r",
     ("error", "escape.lua:2: bad argument #1 to 'create' (function expected, got number)")),
    ("resume a non-coroutine", "local r = coroutine.resume({}) return r",
     ("error", "escape.lua:2: bad argument #1 to 'resume' (coroutine expected, got table)")),
    ("resume the driver's own thread", "local r = coroutine.resume(coroutine.running()) return r",
     ("error", DRIVER_OWNED.format("resume"))),
    ("close the driver's own thread", "local r = coroutine.close(coroutine.running()) return r",
     ("error", DRIVER_OWNED.format("close"))),
    ("wrap-resume nesting overflows the C stack", "local function nest() return coroutine.wrap(function() "
     "local r = nest()() return r end) end local r = nest()() return r", ("limit", "stack")),
    # ---- Python objects are unreachable
    ("python is absent", "return python", ("value", None)),
    ("python.eval", "return python.eval('1')",
     ("error", "escape.lua:2: attempt to index a nil value (global 'python')")),
    ("python.builtins", "return python.builtins.open",
     ("error", "escape.lua:2: attempt to index a nil value (global 'python')")),
    ("python via _G", "return _G.python", ("value", None)),
    ("python via rawget", "return rawget(_G, 'python')", ("value", None)),
    ("no userdata anywhere under _G", """local seen, found = {}, 0
        local function walk(v)
            if type(v) == 'userdata' then found = found + 1 end
            if type(v) ~= 'table' or seen[v] then return end
            seen[v] = true
            for k, x in pairs(v) do walk(k) walk(x) end
            local mt = getmetatable(v) if type(mt) == 'table' then walk(mt) end
        end
        walk(_G) walk(getmetatable('')) return found""", ("value", 0)),
    # ---- no addresses
    ("tostring of a table", "return tostring({})", ("value", "table")),
    ("tostring of a function", "return tostring(print)", ("value", "function")),
    ("tostring of a coroutine", "return tostring(coroutine.create(print))", ("value", "thread")),
    ("tostring uses __name", "return tostring(setmetatable({}, {__name = 'Order'}))", ("value", "Order")),
    ("format %s of a table", "return string.format('%s|%s', {}, print)", ("value", "table|function")),
    ("format %p", "local r = string.format('%p', {}) return r",
     ("error", "escape.lua:2: string.format: %p is not available (addresses differ between runs)")),
    ("format %10p", "local r = string.format('%10p', print) return r",
     ("error", "escape.lua:2: string.format: %p is not available (addresses differ between runs)")),
    ("format %%p is text", "return string.format('%%p %d', 1)", ("value", "%p 1")),
    # ---- randomness and time come from the run
    ("math.randomseed(n) reseeds the run's generator", "math.randomseed(5) local a = math.random(1 << 40) "
     "math.randomseed(5) return a == math.random(1 << 40) and math.randomseed(5) == nil", ("value", True)),
    ("math.randomseed() without a seed", "math.randomseed()",
     ("error", "escape.lua:2: math.randomseed() without a seed is not allowed in the sandbox (Lua would seed it "
               "from the clock); pass a seed, e.g. math.randomseed(42)")),
    ("os.time is the driver's clock", "return os.time()", ("value", 1_700_000_000)),
    ("os.date is UTC on the driver's clock", "return os.date('%Y-%m-%d %H:%M:%S')", ("value", "2023-11-14 22:13:20")),
    ("os.date *t", "local t = os.date('*t') return {t.year, t.month, t.day, t.hour, t.isdst}",
     ("value", [2023, 11, 14, 22, False])),
    ("os.date cannot ask for local time", "return os.date('%H') == os.date('!%H')", ("value", True)),
    ("os.time of a date table is UTC", "return os.time({year = 2024, month = 1, day = 2, hour = 0})",
     ("value", 1_704_153_600)),
    ("os.clock starts at zero", "return os.clock()", ("value", 0.0)),
    # ---- limits cannot be swallowed, C loops cannot hang the worker
    ("pcall swallowing the instruction limit", "pcall(function() while true do end end) return 'escaped'",
     ("limit", "instructions")),
    ("xpcall whose handler returns", "xpcall(function() while true do end end, function() return 'x' end) "
     "return 'escaped'", ("limit", "instructions")),
    ("xpcall whose handler loops", "xpcall(function() while true do end end, function() while true do end end) "
     "return 'escaped'", ("limit", "instructions")),
    ("a coroutine swallowing the limit", "coroutine.resume(coroutine.create(function() while true do end end)) "
     "return 'escaped'", ("limit", "instructions")),
    ("pcall around pcall", "pcall(pcall, function() while true do end end) return 'escaped'",
     ("limit", "instructions")),
    ("string.rep bomb", "local s = string.rep('x', 1 << 30) return #s", ("limit", "memory")),
    ("string.rep bomb via a method", "local s = ('xy'):rep(1 << 29) return #s", ("limit", "memory")),
    ("pcall swallowing the memory limit", "pcall(string.rep, 'x', 1 << 30) return 'escaped'", ("limit", "memory")),
    ("table growth bomb", "local t = {} for i = 1, 1e9 do t[i] = {i} end", ("limit", "memory")),
    ("concat doubling bomb", "local s = 'x' while true do s = s .. s end", ("limit", "memory")),
    ("deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", ("limit", "stack")),
    ("deep recursion under pcall", "local function f(n) return 1 + f(n + 1) end pcall(f, 1) return 'escaped'",
     ("limit", "stack")),
    ("recursion through pcall overflows the C stack", "local function f(n) local ok, v = pcall(f, n + 1) "
     "return v end local r = f(1) return r", ("limit", "stack")),
    ("string.rep of nothing, a huge number of times", "return #string.rep('', math.maxinteger)", ("value", 0)),
    ("string.rep of nothing with a string count", "return #string.rep('', '1e18', '')", ("value", 0)),
    ("table.move over a huge empty range", "local t = table.move({}, 1, math.maxinteger, 1) return t",
     ("limit", "instructions")),
    ("table.move wrap-around", "local t = table.move({}, 1, math.maxinteger, 2) return t",
     ("error", "escape.lua:2: bad argument #4 to 'table.move' (destination wrap around)")),
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
        assert first_line(caught.value) == want
    else:
        # deep recursion must hit Lua's stack limit before a 256 MiB heap fills up
        limits = {"memory": 256 << 20} if want == "stack" else {}
        with pytest.raises(LimitExceeded) as hit:
            run(body, **limits)
        assert (hit.value.limit, hit.value.kind, hit.value.retryable) == (want, "LIMIT_EXCEEDED", False)
        assert hit.value.where == "escape.lua:2"
        assert f"sandbox {want} limit exceeded at escape.lua:2" in hit.value.message


def test_deep_recursion_in_a_small_heap_is_a_memory_limit_at_the_users_line() -> None:
    # a full Lua stack (1,000,000 slots) needs more than 16 MiB: the heap limit comes first
    with pytest.raises(LimitExceeded) as hit:
        run("local function f(n) return 1 + f(n + 1) end local r = f(1) return r", memory=16 << 20)
    assert (hit.value.limit, hit.value.where) == ("memory", "escape.lua:2")


def test_there_are_at_least_fifty_escape_attempts() -> None:
    assert len(ESCAPES) >= 50
    assert len({name for name, _, _ in ESCAPES}) == len(ESCAPES)


def test_the_runtime_is_usable_after_a_caught_error_but_not_after_a_limit() -> None:
    box = sandbox()
    with pytest.raises(LuaRuntimeError):
        box.resume(start(box, "error('first')"))
    assert box.resume(start(box, "return 'second'")) == (True, ("second",))
    with pytest.raises(LimitExceeded):
        box.resume(start(box, "while true do end"))
    with pytest.raises(LimitExceeded, match="instructions"):
        box.resume(start(box, "return 'after the limit'")), "a run that hit a limit stays stopped"


def test_globals_set_in_one_sandbox_are_invisible_to_another() -> None:
    first, second = sandbox(), sandbox()
    assert first.resume(start(first, "shared = 'leak'; string.leak = true; getmetatable('').__index = "
                                     "{upper = function() return 'rewired' end} _G.print = 1 return 1"))[0]
    assert run("return shared") is None  # a third, fresh sandbox
    finished, results = second.resume(start(second, "return {shared == nil, string.leak == nil, ('a'):upper(), "
                                                    "type(print)}"))
    assert finished and second.export(results[0], "r") == [True, True, "A", "function"]


def test_error_objects_with_forged_fields_cross_as_plain_text() -> None:
    box = sandbox()
    body = ("local e = errors.new({kind = 'PAYMENT', message = 'declined', retryable = false}) "
            "rawset(e, '_message', setmetatable({}, {__tostring = function() while true do end end})) "
            "rawset(e, '_where', {}) rawset(e, '_retryable', 'yes') return nil, e")
    finished, results = box.resume(start(box, body))
    assert finished
    failure = box.failure_of(results[1])  # must not run the looping __tostring in Python's str()
    assert (failure.kind, failure.message, failure.retryable, failure.where) == (
        "PAYMENT", "(a table value)", False, "(a table value)")
    finished, results = box.resume(start(box, "local e = errors.new('x') rawset(e, '_kind', {}) return nil, e"))
    assert box.failure_of(results[1]).kind == "INTERNAL"


def test_python_objects_that_leak_in_stay_inert() -> None:
    box = sandbox()

    class Secret:
        token = "s3cret"

    box.add_module("leak", Secret())
    for body in ("local x = leak.token return x", "local x = leak.__class__ return x", "leak.token = 'x'"):
        with pytest.raises(LuaRuntimeError) as caught:
            box.resume(start(box, body))
        assert isinstance(caught.value.value, AttributeError)
        assert str(caught.value.value) == "Python objects are not accessible from the Lua sandbox"
        assert caught.value.where == "escape.lua:2"
    # caught in Lua, the error is an opaque userdata whose attributes are refused too
    _, results = box.resume(start(box, "local ok, e = pcall(function() return leak.token end) "
                                       "local ok2, e2 = pcall(function() return e.__traceback__ end) "
                                       "return {ok, type(e), ok2, tostring(e2)}"))
    assert box.export(results[0], "r") == [False, "userdata", False,
                                           "Python objects are not accessible from the Lua sandbox"]


def command_sandbox() -> tuple[LuaSandbox, Any]:
    """A sandbox with a `cmd.wait()` shim that yields a command, like flowctl's own shims."""
    box = sandbox()
    factory = box.load("return function(yield_command) return {wait = function(x) "
                       "return yield_command({op = 'wait', x = x}) end} end", "=cmd")
    box.add_module("cmd", factory(box.yield_command))
    return box, box.lua.globals()


def test_another_thread_cannot_answer_a_command_in_the_drivers_place() -> None:
    box, _ = command_sandbox()
    main = start(box, "parked = coroutine.running() local a, b = cmd.wait(1) return {a, b}")
    finished, (command,) = box.resume(main)
    assert not finished and command["op"] == "wait"
    intruder = start(box, "return {coroutine.resume(parked, true, 'forged')}")
    with pytest.raises(LuaRuntimeError) as caught:
        box.resume(intruder)
    assert first_line(caught.value) == DRIVER_OWNED.format("resume")
    closer = start(box, "local r = coroutine.close(parked) return r")
    with pytest.raises(LuaRuntimeError) as caught:
        box.resume(closer)
    assert first_line(caught.value) == DRIVER_OWNED.format("close")
    finished, results = box.resume(main, True, "real")
    assert finished and box.export(results[0], "r") == [True, "real"], "the driver's answer still arrives"


def test_a_coroutine_parked_on_a_command_cannot_be_resumed_by_lua() -> None:
    box, _ = command_sandbox()
    main = start(box, "inner = coroutine.create(function() return cmd.wait(2) end) "
                      "return {coroutine.resume(inner)}")
    finished, (command,) = box.resume(main)
    assert not finished and command["x"] == 2, "a command yielded in a user coroutine reaches the driver"
    intruder = start(box, "return {coroutine.resume(inner, true, 'forged')}")
    with pytest.raises(LuaRuntimeError) as caught:
        box.resume(intruder)
    assert first_line(caught.value) == DRIVER_OWNED.format("resume")
    finished, results = box.resume(main, True, "real")
    assert finished and box.export(results[0], "r") == [True, True, "real"]
    after = start(box, "return coroutine.status(inner)")
    assert box.resume(after) == (True, ("dead",)), "once answered, the coroutine is Lua's again"


def finishes_quickly(body: str) -> str:
    """Run ``body`` in a fresh sandbox in a subprocess (a hang must not hang the suite); what it raised."""
    script = textwrap.dedent(f"""
        from runner.sandbox.runtime import LuaSandbox, SandboxLimits
        box = LuaSandbox(seed=1, limits=SandboxLimits(instructions=2_000_000))
        main = box.entrypoint("return {{main = function()\\n" + {body!r} + "\\nend}}", "bomb.lua", "main")
        box.begin_task()
        try:
            print(box.resume(box.start(main)))
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc).split(chr(10))[0])
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{body!r} ran for more than 3 s in C")
    return done.stdout.strip() or done.stderr


def test_a_backtracking_dot_pattern_stops_at_the_instruction_limit() -> None:
    # patterns run on a matcher the instruction budget counts (runner/sandbox/lua/45_patterns.lua)
    outcome = finishes_quickly("local r = string.find(string.rep('a', 3000), '.-.-.-.-.-b') return r")
    assert outcome.startswith("LimitExceeded: LIMIT_EXCEEDED: sandbox instructions limit exceeded at bomb.lua:2 ")


def test_a_backtracking_class_pattern_cannot_hang_the_worker() -> None:
    outcome = finishes_quickly("local r = string.find(string.rep('a', 3000), 'a-a-a-a-a-b') return r")
    assert outcome.startswith("LimitExceeded: LIMIT_EXCEEDED: sandbox instructions limit exceeded at bomb.lua:2 ")


#: 100 unreachable keys in a weak table, then enough garbage for several collection cycles
CHURN = ("for i = 1, 100 do t[{}] = {} end "
         "local junk = {} for i = 1, 300000 do junk[i % 10] = {i} end "
         "local n = 0 for _ in pairs(t) do n = n + 1 end return n")


def test_a_weak_table_keeps_its_entries_through_collections() -> None:
    assert run("local t = setmetatable({}, {__mode = 'k'}) " + CHURN) == 100
    assert run("local t = setmetatable({}, {__mode = 'kv'}) " + CHURN) == 100
    # a metatable given __mode before it is used, by rawset: kept aside the same way
    assert run("local mt = {} rawset(mt, '__mode', 'k') local t = setmetatable({}, mt) " + CHURN) == 100


def test_a_weak_mode_added_after_setmetatable_keeps_entries_and_gc_stays_refused() -> None:
    assert run("local mt = {} local t = setmetatable({}, mt) mt.__mode = 'k' " + CHURN) == 100
    assert run("local mt = {} local t = setmetatable({}, mt) rawset(mt, '__mode', 'k') "
               "assert(mt.__mode == 'k' and rawget(mt, '__mode') == nil) " + CHURN) == 100
    with pytest.raises(LuaRuntimeError) as caught:
        run("local mt = {} setmetatable({}, mt) mt.__gc = print return 1")
    assert first_line(caught.value).startswith("escape.lua:2: setmetatable: __gc finalizers are not allowed")
    with pytest.raises(LuaRuntimeError) as caught:
        run("local mt = {} setmetatable({}, mt) rawset(mt, '__gc', print) return 1")
    assert first_line(caught.value).startswith("escape.lua:2: rawset: __gc finalizers are not allowed")


def test_a_weak_mode_added_later_to_an_inheriting_metatable_keeps_entries() -> None:
    # the metatable already has a metatable of its own (class inheritance): it still gets a guard
    assert run("local Base = {} local Derived = setmetatable({}, {__index = Base}) "
               "local t = setmetatable({}, Derived) Derived.__mode = 'v' "
               "assert(Derived.__mode == 'v' and rawget(Derived, '__mode') == nil) "
               "for i = 1, 100 do t[i] = {} end "
               "local junk = {} for i = 1, 300000 do junk[i % 10] = {i} end "
               "local n = 0 for _ in pairs(t) do n = n + 1 end return n") == 100
    with pytest.raises(LuaRuntimeError) as caught:
        run("local Derived = setmetatable({}, {__index = {}}) setmetatable({}, Derived) "
            "rawset(Derived, '__gc', print) return 1")
    assert first_line(caught.value).startswith("escape.lua:2: rawset: __gc finalizers are not allowed")


def test_a_guarded_class_still_inherits_and_shows_its_own_metatable() -> None:
    assert run("""
        local Base = {greet = function(self) return 'hi ' .. self.name end}
        local Meta = {__index = Base, __call = function(cls, name) return setmetatable({name = name}, cls) end}
        local Derived = setmetatable({}, Meta)
        Derived.__index = Derived
        local obj = Derived('ada')                       -- __call through the guard
        Base.extra = function() return 'late' end        -- the parent's __index is followed live
        Derived.shout = function(self) return self:greet():upper() end   -- a plain new key is fine
        local ok, err = pcall(setmetatable, Derived, {})
        return {obj:greet(), obj:shout(), obj.extra(), getmetatable(Derived) == Meta, #Derived, ok,
                tostring(Derived)}
    """) == ["hi ada", "HI ADA", "late", True, 0, False, "table"]
