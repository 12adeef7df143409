"""The ``channel`` module in workflows: Go-style channels and ``select`` between Lua coroutines.

Channels live in the driver (runner/sandbox/channels.py); Lua holds a small object naming one by
id. ``time.after``, ``process.listen``, ``process.inbox`` and ``process.events`` return
channels of the same kind, so all of them work in ``channel.select``. A channel may carry
a ``wrap`` function that turns what the driver delivers into what Lua sees (a Time, a
Message, an event table). The chunk is loaded for every workflow run (other shims build
on it); the ``channel`` global exists only when the entry lists the module.
"""

from __future__ import annotations

LUA_SOURCE = r"""
local yield_command = ...
local M = {}

local Channel = {__name = "flowctl.Channel"}
Channel.__index = Channel
local Case = {__name = "flowctl.Case"}

local function new_channel(id, wrap)
    return setmetatable({id = id, wrap = wrap}, Channel)
end

local function is_channel(v)
    return getmetatable(v) == Channel
end

-- channel.new(size): size 0 (the default) is unbuffered: a send waits for a receiver.
function M.new(size)
    if size ~= nil and math.type(size) ~= "integer" then
        error("channel.new: the buffer size must be an integer, got " .. type(size), 2)
    end
    local ok, id = yield_command({op = "channel.new", size = size or 0})
    if not ok then error(id, 2) end
    return new_channel(id)
end

function Channel:send(value)
    local ok, err = yield_command({op = "channel.send", id = self.id, value = value})
    if not ok then error(err, 2) end
    return true
end

-- receive() -> value, ok (ok is false once the channel is closed and drained)
function Channel:receive()
    local ok, value, got = yield_command({op = "channel.receive", id = self.id})
    if not ok then error(value, 2) end
    if got and self.wrap then value = self.wrap(value) end
    return value, got
end

function Channel:close()
    local ok, err = yield_command({op = "channel.close", id = self.id})
    if not ok then error(err, 2) end
end

function Channel:case_receive()
    return setmetatable({channel = self, send = false}, Case)
end

function Channel:case_send(value)
    return setmetatable({channel = self, send = true, value = value}, Case)
end

-- channel.select{ch1:case_receive(), ch2:case_send(v), default = true}
--   -> {channel = ch, value = v, ok = ok}; {default = true} when nothing was ready.
-- The first ready case in the order written wins, so a replay chooses the same one.
function M.select(cases)
    if type(cases) ~= "table" then
        error("channel.select: expected a table of cases, got " .. type(cases), 2)
    end
    local list, n = {}, 0
    for i, case in ipairs(cases) do
        if getmetatable(case) ~= Case then
            error("channel.select: case " .. i .. " is not a channel case (use ch:case_receive() or "
                .. "ch:case_send(v))", 2)
        end
        n = n + 1
        list[n] = {id = case.channel.id, send = case.send, value = case.value}
    end
    local ok, index, value, got = yield_command({op = "channel.select", cases = list, n = n,
                                                 default = cases.default and true or false})
    if not ok then error(index, 2) end
    if index == 0 then return {default = true, ok = false} end
    local case = cases[index]
    if not case.send and got and case.channel.wrap then value = case.channel.wrap(value) end
    return {channel = case.channel, value = value, ok = got}
end

M.is_channel = is_channel
return M, {new_channel = new_channel, is_channel = is_channel}
"""
