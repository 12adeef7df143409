"""Random Lua programs built from what a workflow or activity can reach, run the way a worker runs them.

``generate(seed, side)`` builds a program from small snippets: values (shim objects, hostile
metatables, forged ``__name``\\ s, ``__index`` chains, big and deep tables, coroutines, odd
scalars), calls on them (every shim, the string/table/utf8/math/os libraries with hostile
arguments, operators and metamethods), wrapped in coroutines, ``load`` (text, reader
functions, environments), to-be-closed variables and ``pcall``/``xpcall``, plus now and then
a snippet that should end the run at a limit (endless loops, deep recursion, huge tables,
thousands of channels or timers). Every snippet runs in ``pcall`` and records what it got
(``keep``): the run's result is a summary of the error texts and values it saw.

:func:`run_program` runs one program through the worker's own entry points, with small
limits: a workflow with every module, its process state and a :class:`WorkflowDriver`
(when it waits: signals, then updates, then cancellation; afterwards its queries and update
validators are called), or a ``function.lua`` activity through ``ActivityRunner``. What needs
a Temporal server (timers, activities, children, signals to others, ``workflow.info``,
``patched``) is answered at once by :class:`StandInTemporal`, which also counts workflow tasks
(the instruction budget is per task) and, for one seed in four, replays. The report says how the
run ended and its *problems*: a Python exception where flowctl promises a typed failure; a heap
address, Python text or a Python object (userdata) in anything Lua or the caller saw; CPU time
far past the budget; Python-side resources or payloads past what a worker can afford (the
quotas of docs/sandbox.md); and, checked after every program, a bystander workflow on the same
process that no longer runs as it should.

:class:`FuzzWorker` runs programs in a child process (``python -m tests.support.lua_fuzz
serve``), so a program that hangs in C or in trusted code is reported as a hang with its
seed and source instead of hanging the test session; :func:`shrink` drops snippets while a
failure persists. By hand: ``python -m tests.support.lua_fuzz run --programs 2000 --seed 9``
or ``python -m tests.support.lua_fuzz shrink --seed 1234 --side workflow``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import IO, Any

from tests.support.paths import REPO

__all__ = ["FuzzProgram", "FuzzReport", "FuzzWorker", "StandInTemporal", "describe_failure", "generate", "programs",
           "run_program", "shrink", "text_problems"]

#: Limits every fuzzed program runs under: small, so a run ends in milliseconds.
INSTRUCTIONS = 2_000_000
MEMORY = 32 << 20
#: CPU seconds one program may use before it counts as having run past its budget.
CPU_BOUND = 3.0
#: How many of one Python-side resource (channels, listeners, queued messages) a run may hold, or
#: commands (timers, activities, children, signals) one workflow task may send, before it counts as unmetered
#: (docs/sandbox.md, Quotas): far above what a workflow needs, far below what hurts a worker.
RESOURCE_BOUND = 10_000
#: Bytes of one payload or error message past which Temporal refuses it (its blob size limit is 2 MiB).
PAYLOAD_BOUND = 2 << 20
#: Workflow tasks a run may take (each with a fresh budget) before it is stopped as long-running.
MAX_TASKS = 100
#: Wall-clock seconds before the parent declares the worker process hung, and that a fresh one may take to
#: import flowctl and say it is ready.
WALL_BOUND = 15.0
STARTUP_BOUND = 30.0

SIDES = ("workflow", "activity")

# ---------------------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class FuzzProgram:
    """One generated program: the snippets of its ``main``, in order, and its last statement."""

    seed: int
    side: str
    snippets: tuple[str, ...]
    final: str

    @property
    def body(self) -> str:
        """The body of ``main`` (after the frame)."""
        return "\n".join([*self.snippets, self.final])

    @property
    def source(self) -> str:
        """The whole chunk, as a workflow.lua / function.lua entry's source (``fuzz.lua``)."""
        return "return {main = function(...)\n" + FRAME + "\n" + self.body + "\nend}\n"

    def without(self, index: int) -> FuzzProgram:
        """This program minus its snippet ``index``."""
        return dataclasses.replace(self, snippets=self.snippets[:index] + self.snippets[index + 1:])

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "side": self.side, "snippets": list(self.snippets), "final": self.final}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FuzzProgram:
        return cls(int(data["seed"]), str(data["side"]), tuple(data["snippets"]), str(data["final"]))


#: What every program starts with: the builtins the frame uses (taken before any snippet can
#: replace a global), the pool ``V``, ``keep`` (records what a snippet got) and the helpers
#: snippets use. ``V``, ``keep`` and the helpers are globals so that ``load``\ ed code sees them.
FRAME = r"""
local pcall, select, type, next, tostring, rawget = pcall, select, type, next, tostring, rawget
local setmetatable, error, ssub, ulen, is_error = setmetatable, error, string.sub, utf8.len, errors.is
local USERDATA, seen, nseen = "user" .. "data", {}, 0
V = {}
local function record(text) if nseen < 300 then nseen = nseen + 1 seen[nseen] = text end end
local function text(s) s = ssub(s, 1, 300) return ulen(s) and s or "(bytes)" end
local function scan(v, depth, budget)
    local t = type(v)
    if t == USERDATA then record("LEAK " .. t) return budget end
    if t ~= "table" or depth > 3 then return budget end
    local k, x = next(v)
    while k ~= nil and budget > 0 do
        budget = scan(x, depth + 1, scan(k, depth + 1, budget - 1))
        k, x = next(v, k)
    end
    return budget
end
local function describe(v)
    local t = type(v)
    if t == "string" then return "s:" .. text(v) end
    if t == "number" then return "n:" .. tostring(v) end
    if t == "table" and is_error(v) then
        local kind, message = rawget(v, "_kind"), rawget(v, "_message")
        return "e:" .. (type(kind) == "string" and text(kind) or "?") .. ":" ..
            (type(message) == "string" and text(message) or "?")
    end
    return t
end
function keep(...)
    for i = 1, select("#", ...) do
        local v = (select(i, ...))
        scan(v, 0, 40)
        record(describe(v))
    end
    return ...
end
function summary() return {seen = seen, n = nseen} end
function loop() while true do end end
function chain(n, leaf)
    local t = leaf
    if type(t) ~= "table" then t = {x = t} end
    for _ = 1, n do t = setmetatable({}, {__index = t}) end
    return t
end
function deep(n) local t = {} for _ = 1, n do t = {t} end return t end
function cyclic() local t = {1} t.self = t t[2] = t return t end
function big(n) local t = {} for i = 1, n do t[i] = i end return t end
function mutate(o, k, v) rawset(o, k, v) return o end
function pieces(code, n)
    local at = 1
    return function()
        local s = ssub(code, at, at + n - 1) at = at + n
        if s ~= "" then return s end
    end
end
"""

# Fill-ins: each ``$x`` in a template becomes a random choice from its list (lists may use fill-ins).
NUMBERS = ["0", "1", "2", "3", "-1", "7", "255", "1.5", "-0.0", "0/0", "1/0", "-1/0", "math.maxinteger",
           "math.mininteger", "2^53", "2^63", "1e308", "1e-320", "100000", "-100000", "1000000000", "$v"]
STRINGS = ['""', '"x"', '"abc"', '"\\0\\255\\254"', '"%"', '"%s%d"', '"1h30m"', '"5s"', '"-5s"', '"250ms"',
           '"1e9h"', '"app:echo"', '"app:child"', '"app:nope"', '"wf-1"', '"t"', '"NOT_FOUND"', '"\\u{10FFFF}"',
           '"\\xC0\\x80"', 'string.rep("ab", 5000)', 'string.rep("(", 3000)', '"i16"', '"s1"', '"!17"', '"<i8>i8"',
           '"*t"', '"%c%A"', '"{\\"a\\":[1,2]}"', '"return 1"', '"return ..."', '"json"', '"process"', "$v"]
PATTERNS = ['".-b"', '"%a-b"', '"%b()"', '"(.-)%1"', '"(a*(.-)b)*"', '"[%a-z]"', '"["', '"%"', '"(()"', '"%f[%w]%w+"',
            '"^(.-)$"', '"(.)%1"', '"%g+"', '"[^\\0-\\255]"', '"((((((((((a))))))))))"', '"a?a?a?a?a?aaaaa"',
            '".*.*.*.*b"', '"%1"', '"("', '")"', '""', '"%z"', '"[]"', '"%d+"', "$s"]
FORMATS = ['"%s"', '"%d"', '"%5.2f"', '"%q"', '"%x"', '"%c"', '"%i"', '"%g"', '"%a"', '"%99d"', '"%-99s"',
           '"%.99f"', '"%s%s%s"', '"%"', '"%z"', '"%10.3q"', '"%.3s"', '"%u"', '"%*d"', '"%c%c"', "$s"]
TOPICS = ['"t"', '"q"', '"topic"', '""', '"a:b"', 'string.rep("t", 300)', '"\\255"', "$v"]
DURATIONS = ['"1s"', '"0s"', '"-1s"', '"1e9h"', '"5"', '"1h30m"', "5", "-5", "0", "1.5", "1/0", "0/0",
             "time.SECOND", "5 * time.SECOND", "-time.SECOND", "time.Duration.from_nanoseconds(math.maxinteger)",
             "mutate(5 * time.SECOND, 'ns', $v)", "$v"]
JSON_TEXTS = ['"[1, 2, {\\"a\\": null}]"', '"{\\"a\\": 1e400}"', '"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]"',
              'string.rep("[", 5000)', '"\\"\\\\ud800\\""', '"{\\"\\": -0}"', '"nul"', '"12345678901234567890"',
              '"[1,]"', '"\\"\\\\u0000\\""', "$s"]
OPTIONS = ["{}", "$v", '{["activity.retry_policy"] = $v}', '{["activity.retry_policy"] = {maximum_attempts = $v}}',
           '{["activity.start_to_close_timeout"] = $d}', '{["activity.task_queue"] = $v}', '{["activity.nope"] = 1}',
           '{["temporal.workflow.id"] = $v}', "{id_conflict_policy = $v}", "{execution_timeout = $d}",
           "{memo = $v}", '{memo = {["flowctl.revision"] = $v}}', "{search_attributes = $v}", "{retry_policy = $v}",
           "{parent_close_policy = $v}", "{cron_schedule = $v}", "{task_queue = $v}", "{start_delay = $d}",
           "{[$v] = $v}", "{id = $s, id_conflict_policy = 'terminate_existing'}"]
FUNCTIONS = ["function(...) return ... end", "function() end", "print", "function() loop() end",
             "function(...) error({...}) end", "function() error(setmetatable({}, {__tostring = loop})) end",
             "function(...) return coroutine.yield(...) end", "function(a) return a, a end",
             "function() return setmetatable({}, $m) end", "function(...) return select('#', ...) end",
             "function() return 0/0 end", "error", "coroutine.yield", "function(t, k) return rawget(t, k) end",
             "function(a, b) return a < b end", "function() return V[#V] end", "function(...) return keep(...) end",
             "function() error(errors.new{kind = 'CUSTOM', message = $s, details = $v}) end",
             "function(t, k) return t[k] end", "function(s) return tostring(s) end", "function() return $v end",
             "tostring", "function() return {} end", "function() return 'x', 'y' end"]
METAMETHODS = ["__index", "__newindex", "__call", "__tostring", "__len", "__eq", "__lt", "__le", "__concat",
               "__add", "__idiv", "__mod", "__unm", "__close", "__pairs", "__div", "__band", "__shl", "__gc", "__mode"]
NAMES = ['"flowctl.Duration"', '"flowctl.Pid"', '"flowctl.Channel"', '"flowctl.Error"', '"flowctl.Time"',
         '"flowctl.Future"', "$v"]

#: Values a snippet puts in the pool: ``V[i] = <maker>``.
COMMON_MAKERS = [
    "$n", "$s", "$n", "$s", "{}", "{$v, $v, $v}", "{a = $v, b = {c = $v}}", "{[1] = $v, [3] = $v}",
    "setmetatable({}, $m)", "setmetatable({$v}, $m)", "setmetatable({}, $m)", "chain($C, $v)", "deep($D)",
    "cyclic()", "big($N)", "string.rep($s, $N)", "$f", "coroutine.create($f)", "coroutine.wrap($f)",
    "coroutine.running()", "load($s)", "json.decode($j)", "errors.new($v)",
    "errors.new({kind = $s, message = $v, details = $v, retryable = $v})", "time.SECOND", "time.now()",
    "time.unix($n, $n)", "$d", "mutate(time.SECOND, 'ns', $v)", "mutate(time.now(), 'ns', $v)",
    "mutate(errors.new('x'), '_message', $v)", "mutate(errors.new('x'), '_details', $v)", "uuid.v4()",
    "ctx.all()", "math.huge", "table.pack($v, nil, $v)", "json.null", "json.array({})", "json.object({$v})",
    "setmetatable({}, {__name = $K, __index = {ns = $v, id = $v}})", "setmetatable({ns = $v}, {__name = $K})",
    "string.char(255, 0, 192)", "print", "_G", "string", "getmetatable('')", "{n = math.maxinteger}",
    "setmetatable({}, {__len = function() return math.maxinteger end})",
    "setmetatable({}, {__index = function(t, k) return k end, __len = function() return 5 end})",
]
WORKFLOW_MAKERS = [
    "process.self()", "mutate(process.self(), 'id', $v)", "channel.new($n)", "channel.new(1)", "time.after($d)",
    "process.listen($t)", "process.listen($t, {message = true})", "process.inbox()", "process.events()",
    "funcs.async('app:echo', $v)", "funcs.async($s, $v)", "mutate(funcs.async('app:echo'), 'handle', $v)",
    "funcs.new():with_options($o)", "process.with_options($o)", "process.spawn('app:child', nil, $v)",
    "mutate(channel.new(1), 'id', $v)", "mutate(channel.new(1), 'wrap', $f)", "channel.new(1):case_receive()",
    "mutate(channel.new(1):case_send($v), 'channel', $v)", "workflow.info()",
    "process.with_options({id = 'kid'}):spawn('app:child', nil, $v)",
]
ACTIVITY_MAKERS = ["activity.info()"]

#: Calls and statements on pool values; each runs as ``keep(pcall(function() return <call> end))``
#: (a template starting with ``do`` or ``for`` is a statement: ``keep(pcall(function() <it> end))``).
COMMON_ACTIONS = [
    # string
    "string.rep($s, $n, $s)", "string.sub($v, $n, $n)", "string.byte($v, $n, $n)", "string.char($n, $n)",
    "string.format($F, $v, $v)", "string.format($F, $n)", "string.find($v, $p, $n, $v)", "string.find($s, $p)",
    "string.match($v, $p, $n)", "string.match($s, $p)", "string.gsub($v, $p, $v, $n)", "string.gsub($s, $p, $f)",
    "string.gsub($s, $p, '%1%0%9')", "string.upper($v)", "string.reverse($v)", "string.len($v)",
    "string.pack($s, $v)", "string.unpack($s, $v, $n)", "string.packsize($s)", "($s):rep($n)",
    "for a, b in string.gmatch($v, $p) do keep(a, b) end", "string.format('%s', $v)",
    # table
    "table.concat($v, $s, $n, $n)", "table.concat($v)", "table.insert($v, $v)", "table.insert($v, $n, $v)",
    "table.remove($v, $n)", "table.remove($v)", "table.unpack($v, $n, $n)", "table.unpack($v)",
    "table.move($v, $n, $n, $n, $v)", "table.sort($v, $f)", "table.sort($v)", "table.pack($v, $v)",
    # utf8, math
    "utf8.char($n, $n)", "utf8.codepoint($v, $n, $n)", "utf8.len($v, $n, $n, $v)", "utf8.offset($v, $n, $n)",
    "for p, c in utf8.codes($v) do keep(p, c) end", "math.random($n, $n)", "math.random($n)", "math.floor($v)",
    "math.tointeger($v)", "math.fmod($v, $v)", "math.abs($v)", "math.max($v, $v)", "math.ult($v, $v)",
    # the base library
    "tostring($v)", "tonumber($v, $n)", "tonumber($v)", "select($n, $v, $v)", "rawlen($v)", "rawequal($v, $v)",
    "rawget($v, $v)", "rawset($v, $v, $v)", "next($v, $v)", "getmetatable($v)", "setmetatable($v, $m)",
    "setmetatable($v, nil)", "for k, x in pairs($v) do keep(k, x) end", "for i, x in ipairs($v) do keep(i, x) end",
    "assert($v, $v)", "error($v, $n)", "error($v)", "pcall($f, $v)", "xpcall($f, $f, $v)", "pcall(error, $v)",
    "pcall(pcall, error, $v)", "collectgarbage($s)", "require($s)", "load($v)", "load($v, $s, $s, $v)",
    "load($s, 'x', 't', setmetatable({}, $m))", "load(function() return $v end)", "load(pieces('return 1, 2', $n))",
    "load(function() coroutine.yield() end)", "load(function() error($v) end)", "load(function() loop() end)",
    "os.time($v)", "os.date($F, $n)", "os.date($s, $v)", "os.clock()", "os.difftime($v, $v)", "os.date('*t', $n)",
    "load($v, $s, 'b')", "string.dump($f)", "os.exit($v)", "io.write($v)", "debug.getinfo(1)", "select(-1, $v, $v)",
    "select(math.mininteger, $v)", "math.random(math.mininteger, math.maxinteger)", "math.random(0)",
    "do local t = $v for k in pairs(t) do t[k] = nil t[#t + 1] = k end end",
    "do local t = $v for k in next, t do rawset(t, {}, k) end end",
    "table.sort(big(100), function(a, b) return true end)", "table.sort({3, 1, 2}, coroutine.yield)",
    "string.gsub('abc', '%w', setmetatable({}, $m))", "string.gsub($s, '(%w)', coroutine.yield)",
    "coroutine.close(coroutine.running())", "coroutine.resume(coroutine.running())",
    "coroutine.wrap(function() return tostring(setmetatable({}, {__tostring = coroutine.yield})) end)()",
    "do _G[$s] = $f end", "do _G.type = $f end", "do _G.pairs = $f end", "do _G.tostring = $f end",
    "do table.pack = $f end", "do string.rep = $f end", "do getmetatable('').__index = $v end",
    # operators and metamethods
    "$v + $v", "$v .. $v", "$v == $v", "$v < $v", "$v <= $v", "#$v", "-$v", "$v // $v", "$v % $v", "$v ^ $v",
    "$v & $v", "~$v", "$v[$v]", "do $v[$v] = $v end", "$v($v)", "$v:nanoseconds()", "$v:message()", "$v:kind()",
    "$v:details()", "$v:format_rfc3339()", "$v:sub($v)", "$v:add($v)", "$v:seconds()", "$v:unix()",
    "$v:before($v)", "do local c <close> = $v end",
    # coroutines
    "coroutine.resume($v, $v)", "coroutine.close($v)", "coroutine.status($v)", "coroutine.wrap($f)($v)",
    "coroutine.isyieldable()", "coroutine.resume(coroutine.create($f), $v)",
    "do local co = coroutine.create($f) keep(coroutine.resume(co, $v)) keep(coroutine.close(co)) end",
    # json, errors, time, uuid, crypto, ctx, log
    "json.encode($v)", "json.decode($v)", "json.decode($j)", "json.array($v)", "json.object($v)", "errors.new($v)",
    "errors.is($v, $v)", "time.parse_duration($v)", "time.unix($v, $v)", "time.since($v)", "time.now()",
    "time.sleep($d)", "tostring($d)", "$d * $v", "$d / $v", "$d < $v", "$d + $v", "time.Duration.is($v)",
    "time.Duration.from_nanoseconds($v)", "time.Time.is($v)", "uuid.v4()", "uuid.v7()",
    "crypto.random_bytes($n)", "crypto.random_hex($n)", "ctx.get($v)", "ctx.all()", "log.info($v, $v)",
    "log.error($v)", "print($v, $v)", "log.warn($v, {a = $v})",
]
WORKFLOW_ACTIONS = [
    "process.send($v, $t, $v)", "process.send(process.self(), $t, $v)", "process.listen($t)",
    "process.listen($t):receive()", "process.inbox():receive()", "process.monitor($v)", "process.unmonitor($v)",
    "process.link($v)", "process.unlink($v)", "process.terminate($v, $v)", "process.cancel($v, $v)",
    "process.set_options($v)", "process.set_options({trap_links = $v})", "process.spawn($s, $v, $v)",
    "process.spawn('app:child', nil, $v)", "process.exec('app:child', $v, $v)", "process.exec('app:child')",
    "process.with_options($o):spawn('app:child')", "process.with_context($v):spawn('app:child')",
    "process.with_options($o):with_message($t, $v):spawn('app:child', 'app:worker', $v)",
    "workflow.exec($v, $v)", "workflow.info()", "workflow.version($t, $n, $n)", "workflow.version('c', 1, 2)",
    "workflow.attrs($v)", "workflow.attrs({search = $v, memo = $v})", "workflow.attrs({memo = {note = $v}})",
    "workflow.history_length()", "workflow.history_size()", "workflow.on_query($t, $f)",
    "workflow.on_query('q', $f)", "workflow.on_update($t, $f, $f)", "workflow.on_update('u', $f, $f)",
    "funcs.call($v, $v)", "funcs.call('app:echo', $v)", "funcs.async('app:echo', $v):result()",
    "funcs.new():with_options($o):call('app:echo', $v)",
    "channel.new($v)", "channel.new(1):send($v)", "channel.select({$v, $v, default = $v})",
    "channel.select({channel.new(1):case_send($v), time.after($d):case_receive()})", "channel.select({})",
    "time.after($d):receive()", "coroutine.spawn($f)", "coroutine.spawn(function() keep(pcall($f, $v)) end)",
    "channel.is_channel($v)", "$v:receive()", "$v:send($v)", "$v:close()", "$v:result()", "$v:is_done()",
    "$v:workflow_id()", "$v:topic()", "$v:from()", "$v:payload()", "$v:data()", "$v:with_options($o)",
    "$v:call('app:echo', $v)", "$v:async('app:echo', $v)", "$v:spawn('app:child', nil, $v)",
    "$v:with_name($t)", "$v:with_message($t, $v)", "$v:with_context($v)", "$v:case_receive()",
    "channel.select({$v:case_receive(), default = true})",
]
ACTIVITY_ACTIONS = ["activity.heartbeat($v)", "activity.heartbeat({n = $v})", "activity.info()",
                    "activity.is_cancelled()"]

#: Snippets that should end the run at a limit (or a quota), placed once in some programs.
COMMON_ENDINGS = [
    "loop()", "local function r(n) return 1 + r(n + 1) end r(1)", "local t = {} for i = 1, 1e9 do t[i] = i end",
    "local s = 'x' for i = 1, 40 do s = s .. s end",
    "keep(setmetatable({}, {__index = function(t, k) return t[k] end}).x)",
    "local function r() return pcall(r) end r()", "keep(string.rep('x', 1e9))", "keep(#chain(100000))",
    "local function nest(n) return coroutine.wrap(function() return nest(n + 1) end)() end nest(1)",
    "while true do load(function() while true do end end) end",
    "table.remove(setmetatable({}, {__len = function() return math.maxinteger end}), 1)",
    "table.insert(setmetatable({}, {__len = function() return math.maxinteger end}), 1, 1)",
    "keep(pcall(error, 'fuzz.lua:1: stack overflow'))", "for i = 1, 1e6 do keep(pcall(error, {})) end",
    "local s = string.rep('a', 200000) keep(s:find('.-b')) keep(s:find('%a-b'))",
    "local s = string.rep('a', 1 << 22) for i = 1, 1e6 do s:find('b', 1, true) end",
    "local t = setmetatable({}, {__tostring = function(t) return tostring(t) end}) keep(tostring(t))",
    "local co co = coroutine.wrap(function() for i = 1, 1e9 do pcall(coroutine.yield) end end) while true do co() end",
    "local t = {} for i = 1, 300000 do t['k' .. i] = i end keep(json.encode(t))",
    "for i = 1, 1e6 do keep(uuid.v4()) end", "for i = 1, 1e5 do log.info(string.rep('x', 1000)) end",
]
WORKFLOW_ENDINGS = [
    "for i = 1, 1e6 do channel.new(0) end", "for i = 1, 1e6 do process.listen('t' .. i) end",
    "for i = 1, 1e5 do time.after(1) end", "for i = 1, 1e5 do funcs.async('app:echo', i) end",
    "for i = 1, 1e5 do coroutine.spawn(print) end", "for i = 1, 1e5 do workflow.on_query('q' .. i, print) end",
    "local p = process.self() for i = 1, 3000 do process.send(p, 't', string.rep('x', 1 << 20)) end",
    "for r = 1, 1e6 do time.sleep(1) end", "error(string.rep('x', 3 << 20))",
    "local c = channel.new(1000000000) for i = 1, 1e7 do c:send(string.rep('x', 1000)) end",
    "local burn = function(n) local x = 0 for i = 1, n do x = x + i end end for r = 1, 30 do burn(1e6) "
    "time.after(0):receive() end",
]

#: What ``main`` ends with.
FINALS = ["return summary()", "return summary()", "return summary(), V[$i]", "return V[$i]", "return nil, V[$i]",
          "error(V[$i])", "error(errors.new{kind = 'CUSTOM', message = $s, details = V[$i]})", "return V",
          "return {out = summary(), value = V[$i]}"]
WORKFLOW_FINALS = ["workflow.continue_as_new(V[$i])", "process.listen('t'):receive() return summary()"]

_FILLS = {"n": NUMBERS, "s": STRINGS, "p": PATTERNS, "F": FORMATS, "t": TOPICS, "d": DURATIONS, "j": JSON_TEXTS,
          "o": OPTIONS, "f": FUNCTIONS, "K": NAMES}
_TOKEN = re.compile(r"\$([a-zA-Z])")


class _Generator:
    """Builds one program from a seeded random source."""

    def __init__(self, seed: int, side: str) -> None:
        self.rng = random.Random(seed)
        self.side = side
        self.pool = 0
        workflow = side == "workflow"
        self.makers = COMMON_MAKERS + (WORKFLOW_MAKERS * 2 if workflow else ACTIVITY_MAKERS)
        self.actions = COMMON_ACTIONS + (WORKFLOW_ACTIONS * 2 if workflow else ACTIVITY_ACTIONS * 4)
        self.endings = COMMON_ENDINGS + (WORKFLOW_ENDINGS if workflow else [])
        self.finals = FINALS + (WORKFLOW_FINALS if workflow else [])

    def fill(self, template: str, depth: int = 0) -> str:
        return _TOKEN.sub(lambda match: self.token(match.group(1), depth), template)

    def token(self, kind: str, depth: int) -> str:
        rng = self.rng
        if kind == "v":
            if self.pool and (depth > 2 or rng.random() < 0.7):
                return f"V[{rng.randint(1, self.pool)}]"
            if depth > 2:
                return rng.choice(["(nil)", "(1)", '("x")', "({})"])
            # in parentheses: `-$v` must not become a comment, `$v:m()` must parse whatever $v is
            return "(" + self.fill(rng.choice(["$n", "$s", "{}", "$f", "nil", "true", "setmetatable({}, $m)"]),
                                   depth + 1) + ")"
        if kind == "i":
            return str(rng.randint(1, max(self.pool, 1)))
        if kind == "m":
            names = rng.sample(METAMETHODS, rng.randint(1, 4))
            fields = [f"{name} = {self.fill('$f', depth + 1)}" for name in names]
            if rng.random() < 0.2:
                fields.append(f"__name = {self.fill('$K', depth + 1)}")
            if rng.random() < 0.1:
                fields.append("__metatable = 'locked'")
            if rng.random() < 0.1:
                fields.append(f"__index = chain({rng.choice([3, 50, 250])}, {{}})")
            return "{" + ", ".join(fields) + "}"
        if kind == "C":
            return str(rng.choice([1, 3, 50, 250, 2000]))
        if kind == "D":
            return str(rng.choice([2, 50, 199, 250, 5000]))
        if kind == "N":
            return str(rng.choice([0, 3, 100, 10000, 1000000]))
        choices = _FILLS[kind]
        choice = rng.choice(choices if depth < 3 else [c for c in choices if "$" not in c] or ["nil"])
        return self.fill(choice, depth + 1)

    def maker(self) -> str:
        value = self.fill(self.rng.choice(self.makers))
        code = f"V[{self.pool + 1}] = keep(select(2, pcall(function() return {value} end)))"
        self.pool += 1
        return code

    def action(self) -> str:
        template = self.fill(self.rng.choice(self.actions))
        body = template if template.startswith(("do ", "for ")) else f"return {template}"
        return self.wrapped(f"keep(pcall(function() {body} end))", 0)

    def wrapped(self, code: str, depth: int) -> str:
        """``code`` as it is, or run inside a coroutine, ``load``, a to-be-closed scope, ``xpcall``..."""
        rng = self.rng
        if depth > 1 or rng.random() < 0.65:
            return code
        shapes = [
            "keep(pcall(coroutine.wrap(function(...) @X@ end), $v))",
            "do local co = coroutine.create(function(...) @X@ coroutine.yield($v) @X@ end) "
            "keep(coroutine.resume(co, $v)) keep(coroutine.close(co)) end",
            "keep(pcall(load(@Q@, '=fuzz', 't', @ENV@)))",
            "keep(pcall(load(pieces(@Q@, $n))))",
            "keep(pcall(function() local c <close> = setmetatable({}, {__close = $f}) @X@ end))",
            "keep(xpcall(function() @X@ end, $f))",
            "for _ = 1, 3 do @X@ end",
        ]
        if self.side == "workflow":
            shapes.append("coroutine.spawn(function() @X@ end)")
        envs = ["_G", "setmetatable({}, {__index = _G})", "setmetatable({keep = keep, V = V}, $m)", "nil"]
        inner = self.wrapped(code, depth + 1)
        shape = self.fill(rng.choice(shapes)).replace("@ENV@", self.fill(rng.choice(envs)))
        return shape.replace("@Q@", _long_string(inner)).replace("@X@", inner)

    def program(self, seed: int) -> FuzzProgram:
        rng = self.rng
        snippets = [self.maker() for _ in range(rng.randint(2, 5))]
        for _ in range(rng.randint(4, 14)):
            snippets.append(self.maker() if rng.random() < 0.3 else self.action())
        if rng.random() < 0.3:
            snippets.insert(rng.randint(1, len(snippets)), self.fill(rng.choice(self.endings)))
        return FuzzProgram(seed, self.side, tuple(snippets), self.fill(rng.choice(self.finals)))


def _long_string(code: str) -> str:
    """``code`` as a Lua long string literal."""
    level = 0
    while "]" + "=" * level + "]" in code + "]":
        level += 1
    return "[" + "=" * level + "[" + code + "]" + "=" * level + "]"


def generate(seed: int, side: str) -> FuzzProgram:
    """The program of ``seed`` for a workflow or an activity (``side``)."""
    return _Generator(seed, side).program(seed)


def programs(base_seed: int, count: int) -> Iterator[FuzzProgram]:
    """``count`` programs from ``base_seed`` on, alternating workflows and activities (two of three are workflows)."""
    for seed in range(base_seed, base_seed + count):
        yield generate(seed, "activity" if seed % 3 == 2 else "workflow")


# ---------------------------------------------------------------------------------------- checks

#: Text that must never reach Lua or the caller.
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
PYTHON_TEXT = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b[A-Z][A-Za-z]*(?:Error|Exception)\b"
    r"|<(?:lupa|Python|built-in|bound method|function|class|module|Lua [a-z]+ at)\b|object at \b|\blupa\b"
    r"|\buserdata\b|LEAK ")


def text_problems(text: str, where: str) -> list[str]:
    """Problems in a text Lua or the caller sees: a heap address, Python's text, a leaked Python object."""
    problems = []
    address = ADDRESS.search(text)
    if address:
        problems.append(f"address in {where}: …{text[max(0, address.start() - 80):address.end() + 20]}…")
    python = PYTHON_TEXT.search(text)
    if python:
        problems.append(f"Python text in {where}: …{text[max(0, python.start() - 80):python.end() + 80]}…")
    return problems


# ---------------------------------------------------------------------------------------- Temporal's stand-in


class ContinuedAsNew(Exception):
    """What ``workflow.continue_as_new`` raises here (Temporal's own ends the workflow task)."""

    def __init__(self, args: list[Any]) -> None:
        super().__init__("continue-as-new")
        self.args_given = args


class _ChildHandle:
    """A started child workflow: it completes at once with its first input."""

    def __init__(self, temporal: StandInTemporal, result: Any) -> None:
        self.first_execution_run_id = "child-run"
        self._temporal = temporal
        self._result = result

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        await self._temporal.round_trip()
        return self._result


class _ExternalHandle:
    def __init__(self, temporal: StandInTemporal) -> None:
        self._temporal = temporal

    async def signal(self, _signal: str, args: list[Any]) -> None:
        self._temporal.command("a signal's payload", args)
        await self._temporal.round_trip()

    async def cancel(self) -> None:
        self._temporal.command("a cancellation")
        await self._temporal.round_trip()


class _Discard(logging.Handler):
    """Formats every record (as a real handler would) and keeps nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


class StandInTemporal:
    """What the workflow shims call on ``temporalio.workflow``, answered at once, without a server."""

    def __init__(self, seed: int, *, replaying: bool = False) -> None:
        self._random = random.Random(seed)
        #: a replay of a history that recorded no patch marker (the run started before the change)
        self.replaying = replaying
        self.markers: set[str] = set()
        self.now_ns = 1_700_000_000 * 10**9
        self.children: set[str] = set()
        #: the workflow task: what the server answers arrives in a new one (the budget is per task)
        self.task = 1
        #: commands sent to the server, by workflow task
        self.commands: collections.Counter[int] = collections.Counter()
        #: payloads too big for Temporal: what, and how many bytes
        self.oversize: list[str] = []
        #: timers waiting for good (they count as nothing happening)
        self.parked = 0
        self.memo: dict[str, Any] = {}
        self.unsafe = SimpleNamespace(is_replaying=lambda: self.replaying)
        self.logger = logging.getLogger("flowctl.fuzz.workflow")

    def info(self) -> Any:
        return SimpleNamespace(workflow_id="wf-fuzz", run_id="run-fuzz", workflow_type="app:fuzz", task_queue="fuzz",
                               namespace="default", attempt=1, get_current_history_length=lambda: 12,
                               get_current_history_size=lambda: 4096,
                               workflow_start_time=datetime.fromtimestamp(1_700_000_000, UTC),
                               first_execution_run_id="run-fuzz", continued_run_id=None, parent=None)

    def time_ns(self) -> int:
        return self.now_ns

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)

    def uuid7(self) -> uuid.UUID:
        value = (self.now_ns // 1_000_000) << 80 | self._random.getrandbits(80)
        return uuid.UUID(int=(value & ~(0xF << 76) | 0x7 << 76) & ~(0x3 << 62) | 0x2 << 62)

    def random(self) -> random.Random:
        return self._random

    def command(self, what: str, payload: Any = None) -> None:
        """One command to the server in this workflow task, with the payload it carries."""
        self.commands[self.task] += 1
        size = len(json.dumps(payload))  # Temporal's JSON converter would refuse what JSON cannot hold
        if size > PAYLOAD_BOUND:
            self.oversize.append(f"{what}: {size:,} bytes")

    async def sleep(self, delta: Any) -> None:
        self.command("a timer")
        ns = int(delta.total_seconds() * 1e9)
        if ns > 86_400 * 10**9:  # a timer that fires after the test: it waits until the run is canceled
            self.parked += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.parked -= 1
        self.now_ns += ns
        await self.round_trip()

    async def round_trip(self) -> None:
        """What the server does: its answer comes in the next workflow task."""
        await asyncio.sleep(0)
        self.task += 1

    async def execute_activity(self, _activity: str, args: Iterable[Any] = (), **_options: Any) -> Any:
        values = list(args)
        self.command("an activity's input", values)
        await self.round_trip()
        return values[0] if values else None

    async def start_child_workflow(self, workflow_type: str, args: Iterable[Any] = (), id: str = "",
                                   **options: Any) -> _ChildHandle:
        from temporalio.exceptions import WorkflowAlreadyStartedError

        values = list(args)
        self.command("a child's input and memo", [values, options.get("memo")])
        if id in self.children:
            raise WorkflowAlreadyStartedError(id, workflow_type)
        self.children.add(id)
        await self.round_trip()
        return _ChildHandle(self, values[0] if values else None)

    def get_external_workflow_handle(self, _workflow_id: str) -> _ExternalHandle:
        return _ExternalHandle(self)

    def upsert_search_attributes(self, updates: Any) -> None:
        list(updates)

    def upsert_memo(self, memo: dict[str, Any]) -> None:
        self.command("a memo", memo)
        self.memo.update(memo)

    def continue_as_new(self, args: Iterable[Any] = (), memo: Any = None) -> None:
        values = list(args)
        self.command("continue-as-new's input and memo", [values, memo])
        raise ContinuedAsNew(values)

    def patched(self, marker: str) -> bool:
        """Temporal's: outside a replay it records the marker and says yes; in one, whether it was recorded."""
        if not self.replaying:
            self.markers.add(marker)
        return marker in self.markers


def install_stand_in(seed: int, *, replaying: bool = False) -> StandInTemporal:
    """Make the workflow shims talk to a fresh :class:`StandInTemporal` (in this process, for good)."""
    from runner.shims import crypto, funcs, log, process, workflow
    from runner.shims import time as time_shim
    from runner.shims import uuid as uuid_shim

    stand_in = StandInTemporal(seed, replaying=replaying)
    for module in (crypto, funcs, log, process, time_shim, uuid_shim, workflow):
        module.workflow = stand_in  # type: ignore[attr-defined]
    return stand_in


# ---------------------------------------------------------------------------------------- running one program


@dataclass
class FuzzReport:
    """How one program ended, and what was wrong with it (``problems``: empty when all is well)."""

    seed: int
    side: str
    #: value, error (a Lua error), failure (a typed FlowFailure), limit, waits, long, continued, task_failure,
    #: hang or crash
    outcome: str
    text: str
    cpu_seconds: float
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Python exceptions that are a workflow *task* failure on purpose (Temporal retries the task).
TASK_FAILURES = ("UnsupportedVersion",)
#: What is delivered to a waiting workflow: payloads any Temporal client could send.
SIGNAL_PAYLOADS: list[Any] = [1, "x", {"a": [1, 2.5, None]}, [[[]]], {"": {"1": "a"}}, "é" * 100, -0.0,
                              9_223_372_036_854_775_807, None, True]


class _Run:
    """One program's run: the outcome, texts to check, and problems found on the way."""

    def __init__(self, program: FuzzProgram) -> None:
        self.program = program
        self.outcome = "value"
        self.texts: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def saw(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def failed(self, where: str, exc: BaseException) -> None:
        """Classify an exception ``where`` raised: typed failures are fine, anything else is a problem."""
        from runner.sandbox.failures import FlowFailure, LimitExceeded, LuaRuntimeError

        if isinstance(exc, LimitExceeded):
            self.outcome = "limit" if where == "main" else self.outcome
            self.saw(where, exc.message)
        elif isinstance(exc, FlowFailure):
            self.outcome = "failure" if where == "main" else self.outcome
            self.saw(where, exc.message + " " + json.dumps(exc.details, default=repr) + " " + str(exc.where))
        elif isinstance(exc, LuaRuntimeError):
            self.outcome = "error" if where == "main" else self.outcome
            self.saw(where, exc.message + "\n" + exc.traceback)
        elif isinstance(exc, ContinuedAsNew):
            self.outcome = "continued"
            self.saw(where, json.dumps(exc.args_given))
        elif isinstance(exc, TooManyTasks):
            self.outcome = "long"
        elif type(exc).__name__ in TASK_FAILURES:
            self.outcome = "task_failure"
            self.saw(where, str(exc))
        else:
            self.problems.append(f"Python exception in {where}: {type(exc).__name__}: {exc}\n"
                                 + "".join(traceback.format_exception(exc))[-3000:])

    def sent(self, where: str, error: BaseException) -> None:
        """What the worker sends Temporal for a failed run, query or update (an ApplicationError, or the
        exception that fails the workflow task)."""
        from temporalio.exceptions import ApplicationError

        if isinstance(error, ApplicationError):
            self.saw(where, f"{error.type}: {error.message} {json.dumps(list(error.details))}")
        else:  # LuaWorkflowError: the workflow task fails with this text (Temporal retries the task)
            self.saw(where, f"the task fails: {error}")

    def outcome_of(self, sandbox: Any, where: str, call: Callable[[], tuple[Any, ...]]) -> None:
        """Run ``call`` (the run's ``main``, an update) and turn its end into what the worker sends Temporal,
        with the worker's own functions (runner.temporal.workflow)."""
        from runner.sandbox.failures import FlowFailure, LuaRuntimeError
        from runner.temporal import workflow as worker

        main = where == "result"
        try:
            value, failure = worker._outcome(sandbox, call())
            if failure is None:
                self.saw(where, json.dumps(value, allow_nan=False))
                return
            self.outcome = "failure" if main else self.outcome
            self.sent(where, worker._sent(sandbox, failure))
        except LuaRuntimeError as exc:
            self.failed("main" if main else where, exc)
            self.send(where, worker._runtime_error, sandbox, exc)
        except FlowFailure as exc:
            self.failed("main" if main else where, exc)
            self.send(where, worker._sent, sandbox, exc)
        except BaseException as exc:
            self.failed("main" if main else where, exc)

    def send(self, where: str, convert: Callable[..., BaseException], *args: Any) -> None:
        """:meth:`sent` of what ``convert(*args)`` makes of a failure (a Python exception there is a problem)."""
        try:
            error = convert(*args)
        except Exception as exc:
            self.failed(where, exc)
            return
        self.sent(where, error)

    def report(self, cpu: float) -> FuzzReport:
        for where, text in self.texts:
            self.problems.extend(text_problems(text, where))
            if len(text) > PAYLOAD_BOUND:
                self.problems.append(f"oversize: {where} is {len(text):,} bytes (Temporal refuses more than "
                                     f"{PAYLOAD_BOUND:,})")
        if cpu > CPU_BOUND:
            self.problems.append(f"ran {cpu:.1f} s of CPU (the budget is {INSTRUCTIONS:,} instructions)")
        text = "\n".join(f"{where}: {text}" for where, text in self.texts)
        return FuzzReport(self.program.seed, self.program.side, self.outcome, text[:4000], round(cpu, 3),
                          self.problems)


def run_program(program: FuzzProgram) -> FuzzReport:
    """Run ``program`` the way a worker runs a workflow or an activity, with small limits; its report."""
    run = _Run(program)
    started = time.process_time()
    try:
        if program.side == "workflow":
            _run_workflow(program, run)
        else:
            _run_activity(program, run)
    except Exception as exc:  # the program could not even start (or the harness is wrong): never expected
        run.problems.append(f"the harness failed: {type(exc).__name__}: {exc}\n"
                            + "".join(traceback.format_exception(exc))[-3000:])
    return run.report(time.process_time() - started)


def _limits() -> Any:
    from runner.sandbox.runtime import SandboxLimits

    return SandboxLimits(memory=MEMORY, instructions=INSTRUCTIONS)


def _source() -> Any:
    from registry.revision import Revision
    from runner.revision_source import ProjectRevisionSource

    worker = Revision(entry_id="app:worker", kind="temporal.worker", digest="2" * 64, data={"task_queue": "fuzz"},
                      source=None, source_name=None)
    child = Revision(entry_id="app:child", kind="workflow.lua", digest="1" * 64,
                     data={"meta": {"temporal": {"workflow": {"worker": "app:worker"}}}}, source="return {}",
                     source_name="child.lua")
    echo = Revision(entry_id="app:echo", kind="function.lua", digest="3" * 64,
                    data={"meta": {"temporal": {"activity": {"worker": "app:worker"}}}},
                    source="return {main = function(...) return ... end}", source_name="echo.lua")
    return ProjectRevisionSource([worker, child, echo])


WORKFLOW_MODULES = ["process", "time", "channel", "funcs", "json", "workflow", "errors", "ctx", "crypto", "uuid"]


def _run_workflow(program: FuzzProgram, run: _Run) -> None:
    from registry.revision import Revision
    from runner.sandbox.driver import WorkflowDriver
    from runner.sandbox.runtime import LuaSandbox
    from runner.shims.process import ProcessState
    from runner.shims.run_context import WorkflowRun
    from runner.shims.workflow_modules import install_workflow_modules

    stand_in = install_stand_in(program.seed, replaying=program.seed % 4 == 3)
    sandbox = LuaSandbox(seed=program.seed, limits=_limits(), spawn=True, clock_ns=stand_in.time_ns,
                         owner="app:fuzz")
    driver = WorkflowDriver(sandbox, {})
    driver.task_id = lambda: stand_in.task  # wake-ups within one workflow task share its budget
    driver.before_task.append(functools.partial(_count_task, stand_in))
    revision = Revision(entry_id="app:fuzz", kind="workflow.lua", digest="0" * 64,
                        data={"modules": WORKFLOW_MODULES}, source=program.source, source_name="fuzz.lua")
    wf = WorkflowRun(sandbox=sandbox, driver=driver, revision=revision, source=_source(),
                     context={"tenant": "t-1", "n": 3})
    wf.process = ProcessState(wf, [{"topic": "t", "payload": {"early": True}, "from": "wf-parent"}])
    driver.handlers.update(install_workflow_modules(wf, WORKFLOW_MODULES))
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: _loop_problem(run, context))
    try:
        main = sandbox.entrypoint(program.source, "fuzz.lua", "main")
        inputs = [sandbox.import_({"order": 1, "items": [1, 2]}, "input[1]")]
        loop.run_until_complete(_drive(run, wf, main, inputs, stand_in))
        run.problems.extend(_unmetered(wf, stand_in))
    finally:
        loop.close()
        # a big Lua heap, or a run abandoned while it waits, is freed now, not at the next automatic collection
        collect = run.outcome == "waits" or sandbox.memory_used() > (4 << 20)
        del wf, driver, sandbox
        if collect:
            gc.collect()


def _unmetered(wf: Any, stand_in: StandInTemporal) -> list[str]:
    """Python-side resources the run piled up past any quota (each costs the worker memory or work)."""
    held = {
        "commands in one workflow task": max(stand_in.commands.values(), default=0),
        "live channels": len(wf.driver.channels),
        "listeners": len(wf.process.listeners),
        "queued messages": len(wf.process.pending) + sum(len(c.buffer) for c in wf.driver.channels.values()),
    }
    found = [f"unmetered: {count:,} {what} (no quota stopped it)" for what, count in held.items()
             if count > RESOURCE_BOUND]
    return found + [f"oversize: {what} (Temporal refuses more than {PAYLOAD_BOUND:,})" for what in stand_in.oversize]


class TooManyTasks(Exception):
    """A run that goes on for more workflow tasks than a test waits for (a timer loop...): stopped there."""


def _count_task(stand_in: StandInTemporal) -> None:
    if stand_in.task > MAX_TASKS:
        raise TooManyTasks(f"still running after {MAX_TASKS} workflow tasks")


def _loop_problem(run: _Run, context: dict[str, Any]) -> None:
    message = str(context.get("message"))
    if "was destroyed but it is pending" in message:
        return  # a run abandoned while it waits
    exc = context.get("exception")
    run.problems.append(f"asyncio: {message}: {type(exc).__name__ if exc else ''} {exc or ''}")


async def _drive(run: _Run, wf: Any, main: Any, inputs: list[Any], stand_in: StandInTemporal) -> None:
    """Run ``main`` like Temporal would: when it waits, deliver signals, then updates, then cancel it."""
    task = asyncio.get_running_loop().create_task(wf.driver.run(main, *inputs))
    updates: list[tuple[str, asyncio.Future[Any]]] = []
    for stage in range(4):
        if await _settled(task, stand_in):
            break
        stand_in.task += 1  # what arrives from outside comes in a new workflow task
        if stage == 0:
            for topic in ["t", "q", *sorted(wf.process.listeners)][:6]:
                for payload in random.Random(run.program.seed).sample(SIGNAL_PAYLOADS, 3):
                    _call(run, "a signal", wf.process.deliver, topic, payload, "wf-other")
        elif stage == 1:
            for name, (fn, _) in sorted(wf.updates.items())[:3]:
                updates.append((name, wf.driver.call(fn, *_imported(wf.sandbox))))
        elif stage == 2:
            task.cancel()
    if task.done():
        run.outcome_of(wf.sandbox, "result", task.result)
    else:
        run.outcome = "waits"
    for name, future in updates:
        if future.done():
            run.outcome_of(wf.sandbox, f"update {name!r} result", future.result)
    for name, fn in sorted(wf.queries.items())[:3]:
        _handler_call(run, wf, f"query {name!r}", fn)
    for name, (_, validator) in sorted(wf.updates.items())[:3]:
        if validator is not None:
            _handler_call(run, wf, f"update {name!r} validator", validator)


async def _settled(task: asyncio.Task[Any], stand_in: StandInTemporal) -> bool:
    """Wait until ``task`` is done (True) or only waits for something from outside (False)."""
    quiet = 0
    while not task.done():
        await asyncio.sleep(0)
        pending = [t for t in asyncio.all_tasks() if not t.done()]
        quiet = quiet + 1 if len(pending) <= 2 + stand_in.parked else 0
        if quiet >= 4:
            return False
    return True


def _imported(sandbox: Any) -> list[Any]:
    return [sandbox.import_(value, f"argument {i + 1}") for i, value in enumerate(["x", {"n": 1}])]


def _call(run: _Run, where: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        run.failed(where, exc)
        return None


def _handler_call(run: _Run, wf: Any, where: str, fn: Any) -> None:
    """A query handler or update validator, called as the worker calls it (``call_now``)."""
    from runner.sandbox.failures import FlowFailure, LuaRuntimeError
    from runner.temporal import workflow as worker

    try:
        values = wf.driver.call_now(fn, *_imported(wf.sandbox))
        err = values[1] if len(values) > 1 else None
        if err is not None:
            run.sent(where, worker._sent(wf.sandbox, wf.sandbox.failure_of(err)))
        else:
            run.saw(where, json.dumps(worker._result(wf.sandbox, values[0] if values else None, f"{where} result")))
    except (LuaRuntimeError, FlowFailure) as exc:
        run.failed(where, exc)
        run.send(where, worker._caller_error, wf.sandbox, exc, where)
    except Exception as exc:  # an ApplicationError is what the worker raises for a failed query
        from temporalio.exceptions import ApplicationError

        if isinstance(exc, ApplicationError):
            run.sent(where, exc)
        else:
            run.failed(where, exc)


def _heartbeat(*details: Any) -> None:
    json.dumps(details)  # Temporal's JSON converter would refuse what JSON cannot hold


def _attempt() -> Any:
    """The running activity attempt, as the activity modules reach it: answered at once."""
    from runner.shims.activity_modules import ActivityCalls

    return ActivityCalls(info=lambda: {"activity_type": "app:fuzz", "attempt": 1, "heartbeat_details": []},
                         heartbeat=_heartbeat, is_cancelled=lambda: False, wait_cancelled=lambda _seconds: False,
                         context={"tenant": "t-1"})


def _run_activity(program: FuzzProgram, run: _Run) -> None:
    from registry.revision import Revision
    from runner.temporal.activities import ActivityRunner

    revision = Revision(entry_id="app:fuzz", kind="function.lua", digest="4" * 64, data={},
                        source=program.source, source_name="fuzz.lua")
    runner = ActivityRunner(_source(), limits=_limits())
    try:
        value = runner._run_lua_sync(revision, [{"order": 1}], _attempt())
    except Exception as exc:
        run.failed("main", exc)
        return
    run.saw("result", json.dumps(value, allow_nan=False))


# ---------------------------------------------------------------------------------------- the worker process


#: A workflow every worker process must still run correctly after each program (a bystander on the same
#: worker): it waits on a channel and a timer, and reads what a changed locale or state would change.
BYSTANDER = FuzzProgram(0, "workflow", (), "local c = channel.new(1) c:send(string.format('%.1f', 1.5)) "
                        "time.sleep(1) return {c:receive(), tostring(0/0), os.date('!%A', 0), 'b' < 'a', #V}")
BYSTANDER_RESULT = '["1.5", "nan", "Thursday", false, 0]'


def bystander_problems() -> list[str]:
    """What is wrong with this process now, seen from a bystander workflow (nothing, normally)."""
    report = run_program(BYSTANDER)
    if report.problems or report.text != "result: " + BYSTANDER_RESULT:
        return [f"a bystander workflow on the same worker went wrong afterwards: {report.outcome}: "
                f"{report.text[:500]} {report.problems[:1]}"]
    return []


def serve() -> None:
    """Run the programs read from stdin (one JSON object a line); write one report a line."""
    logging.getLogger("flowctl.fuzz").addHandler(_Discard())
    logging.getLogger("flowctl.fuzz").propagate = False
    logging.getLogger("temporalio").addHandler(_Discard())
    logging.getLogger("temporalio").propagate = False
    logging.getLogger().setLevel(logging.DEBUG)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the report stream
    problems = bystander_problems()  # imports and warms up what every program uses
    out.write(json.dumps({"ready": not problems, "problems": problems}) + "\n")
    out.flush()
    for line in sys.stdin:
        program = FuzzProgram.from_dict(json.loads(line))
        report = run_program(program)
        report.problems.extend(bystander_problems())
        out.write(json.dumps(report.to_dict()) + "\n")
        out.flush()


class FuzzWorker:
    """A child process that runs programs; one that hangs is killed, reported, and replaced."""

    def __init__(self, *, wall_bound: float = WALL_BOUND) -> None:
        self.wall_bound = wall_bound
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        #: what the worker process writes to stderr (a crash's traceback)
        self._stderr: IO[bytes] | None = None

    def start(self) -> subprocess.Popen[str]:
        """The worker process (started now if there is none)."""
        if self._process is None:
            self._lines = queue.Queue()
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the process runs; close())
            self._process = subprocess.Popen([sys.executable, "-m", "tests.support.lua_fuzz", "serve"], cwd=REPO,
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                             text=True, bufsize=1)
            threading.Thread(target=self._read, args=(self._process, self._lines), daemon=True).start()
            try:
                ready = self._lines.get(timeout=STARTUP_BOUND)
            except queue.Empty:
                ready = None
            if ready is None or not json.loads(ready)["ready"]:
                said = self._said()
                self.close()
                raise RuntimeError(f"the fuzz worker process did not start: {ready or ''} {said}")
        return self._process

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def run(self, program: FuzzProgram) -> FuzzReport:
        """Run ``program`` in the worker process; a hang or a crash is a report with a problem."""
        process = self.start()
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(program.to_dict()) + "\n")
            process.stdin.flush()
            line = self._lines.get(timeout=self.wall_bound)
        except queue.Empty:
            self.close()
            return FuzzReport(program.seed, program.side, "hang", "", self.wall_bound,
                              [f"no answer within {self.wall_bound:.0f} s: the worker process froze"])
        except OSError:
            line = None
        if line is None:
            code = process.wait()
            said = self._said()
            self.close()
            return FuzzReport(program.seed, program.side, "crash", "", 0.0,
                              [f"the worker process died (exit status {code}): …{said}"])
        return FuzzReport(**json.loads(line))

    def _said(self) -> str:
        """The end of what the worker process wrote to stderr."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        """Stop the worker process (it is ours: killed by its handle, never by name)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FuzzWorker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def shrink(program: FuzzProgram, worker: FuzzWorker, fails: Callable[[FuzzReport], bool]) -> FuzzProgram:
    """The smallest program (by snippets dropped one at a time) whose report still ``fails``."""
    changed = True
    while changed:
        changed = False
        for index in reversed(range(len(program.snippets))):
            candidate = program.without(index)
            if fails(worker.run(candidate)):
                program, changed = candidate, True
    return program


def kind_of(report: FuzzReport) -> str:
    """A failure's class: hang, crash, traceback, address, python-text, slow, unmetered, oversize or other."""
    first = report.problems[0] if report.problems else ""
    if report.outcome in ("hang", "crash"):
        return report.outcome
    for prefix, kind in (("Python exception", "traceback"), ("asyncio", "traceback"), ("address", "address"),
                         ("Python text", "python-text"), ("ran ", "slow"), ("unmetered", "unmetered"),
                         ("oversize", "oversize")):
        if first.startswith(prefix):
            return kind
    return "other"


def describe_failure(program: FuzzProgram, report: FuzzReport) -> str:
    """What a test failure prints: how to run it again, the problems and the program."""
    return (f"seed {program.seed} ({program.side}, outcome {report.outcome}, {report.cpu_seconds} s CPU); rerun: "
            f"python -m tests.support.lua_fuzz shrink --seed {program.seed} --side {program.side}\n"
            + "\n".join(report.problems) + "\n--- main's body after the frame:\n" + program.body)


def main(argv: list[str] | None = None) -> None:
    """``serve`` (the worker process), ``run`` (many programs, a tally) or ``shrink`` (one seed)."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.lua_fuzz")
    parser.add_argument("command", choices=["serve", "run", "shrink", "show"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--side", choices=SIDES, default=None)
    parser.add_argument("--seconds", type=float, default=0.0, help="run: stop after this long (0: --programs)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
        return
    if args.command in ("shrink", "show"):
        program = generate(args.seed, args.side or ("activity" if args.seed % 3 == 2 else "workflow"))
        with FuzzWorker() as worker:
            report = worker.run(program)
            if args.command == "shrink" and report.problems:
                first = kind_of(report)
                program = shrink(program, worker, lambda r: bool(r.problems) and kind_of(r) == first)
                report = worker.run(program)
        print(describe_failure(program, report) if report.problems else f"{report.outcome}: {report.text[:1500]}\n"
              + program.body)
        return
    tally: dict[str, int] = {}
    slowest: list[tuple[float, int]] = []
    started = time.monotonic()
    with FuzzWorker() as worker, contextlib.suppress(KeyboardInterrupt):
        count = sys.maxsize if args.seconds else args.programs
        for program in programs(args.seed, count):
            if args.seconds and time.monotonic() - started > args.seconds:
                break
            report = worker.run(program)
            tally[report.outcome] = tally.get(report.outcome, 0) + 1
            slowest = sorted([*slowest, (report.cpu_seconds, program.seed)], reverse=True)[:5]
            if report.problems:
                print(describe_failure(program, report) + "\n", flush=True)
    print(f"{sum(tally.values())} programs in {time.monotonic() - started:.1f} s: {tally}; most CPU: "
          + ", ".join(f"seed {seed} {cpu:.2f} s" for cpu, seed in slowest))


if __name__ == "__main__":
    main()
