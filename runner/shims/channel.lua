-- The `channel` module in workflows: Go-style channels and `select` between Lua coroutines.
-- It has no Python half of its own: channels live in the driver (runner/sandbox/channels.py),
-- and Lua holds a small object naming one by id. time.after, process.listen, process.inbox
-- and process.events return channels of the same kind, so all of them work in
-- channel.select. A channel may carry a `wrap` function that turns what the driver delivers
-- into what Lua sees (a Time, a Message, an event table). The chunk is loaded for every
-- workflow run and returns the module and the kernel other shims make channels with; the
-- `channel` global exists only when the entry lists the module.
local kit = ...
local call, class, setmetatable, getmetatable = kit.call, kit.class, kit.setmetatable, kit.getmetatable
local type, error, ipairs, mtype = type, error, ipairs, math.type
local M = {}

local Channel, ChannelMT = class("flowctl.Channel")
local _, Case = class("flowctl.Case")

local function new_channel(id, wrap)
    return setmetatable({id = id, wrap = wrap}, ChannelMT)
end

local function is_channel(v)
    return getmetatable(v) == ChannelMT
end

-- channel.new(size): size 0 (the default) is unbuffered: a send waits for a receiver.
function M.new(size)
    if size ~= nil and mtype(size) ~= "integer" then
        error("channel.new: the buffer size must be an integer, got " .. type(size), 2)
    end
    local id = call({op = "channel.new", size = size or 0})
    return new_channel(id)
end

function Channel:send(value)
    call({op = "channel.send", id = self.id, value = value})
    return true
end

-- receive() -> value, ok (ok is false once the channel is closed and drained)
function Channel:receive()
    local value, got = call({op = "channel.receive", id = self.id})
    if got and self.wrap then value = self.wrap(value) end
    return value, got
end

function Channel:close()
    call({op = "channel.close", id = self.id})
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
    local index, value, got = call({op = "channel.select", cases = list, n = n,
                                    default = cases.default and true or false})
    if index == 0 then return {default = true, ok = false} end
    local case = cases[index]
    if not case.send and got and case.channel.wrap then value = case.channel.wrap(value) end
    return {channel = case.channel, value = value, ok = got}
end

M.is_channel = is_channel
return M, {new_channel = new_channel, is_channel = is_channel}
