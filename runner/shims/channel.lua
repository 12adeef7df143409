-- The `channel` module in workflows: Go-style channels and `select` between Lua coroutines.
-- It has no Python half of its own: channels live in the driver (runner/sandbox/channels.py),
-- and Lua holds a small object naming one by id. time.after, process.listen, process.inbox
-- and process.events return channels of the same kind, so all of them work in
-- channel.select. A channel may carry a `wrap` function that turns what the driver delivers
-- into what Lua sees (a Time, a Message, an event table). The chunk is loaded for every
-- workflow run and returns the module and the kernel other shims make channels with; the
-- `channel` global exists only when the entry lists the module. What channels do (the
-- module's functions, a channel's methods) is built the first time a run uses a channel
-- (below the `--- on demand ---` line): most runs use none.
local build, kit = ...
local class, setmetatable, is_a = kit.class, kit.setmetatable, kit.is_a
local M = {}

local Channel, ChannelMT = class("flowctl.Channel")
local _, Case = class("flowctl.Case")

local function new_channel(id, wrap)
    return setmetatable({id = id, wrap = wrap}, ChannelMT)
end

local function is_channel(v)
    return is_a(v, ChannelMT)
end

-- The module's functions and a channel's methods: built (below) the first time one is used.
local built
local function operations()
    built = built or build(kit, Channel, ChannelMT, Case, new_channel, is_channel)
    return built
end
kit.later(operations, Channel, ChannelMT, {})
-- (tail calls: errors these raise at level 2 point at the line that called channel.new/select)
function M.new(size) return operations().new(size) end
function M.select(cases) return operations().select(cases) end

M.is_channel = is_channel
do return M, {new_channel = new_channel, is_channel = is_channel} end   -- (the rest: a chunk of its own)

--- on demand ---
-- Channels at work (kit.later, above): the part above passes what they use; this part returns
-- the module's functions.
local kit, Channel, ChannelMT, Case, new_channel, is_channel = ...
local call, setmetatable = kit.call, kit.setmetatable
local field, describe, rawget, is_a = kit.field, kit.describe, kit.rawget, kit.is_a
local type, error, ipairs, mtype = kit.type, kit.error, kit.ipairs, kit.math_type
local M = {}

-- channel_id(ch, what): the driver's id of a channel, read raw and checked (user code can
-- rawset anything into a channel object); an error at the caller's caller otherwise.
local function channel_id(ch, what)
    local id = is_channel(ch) and field(ch, "id", "integer")
    if not id then
        error(what .. ": expected a channel, got " .. describe(ch)
            .. (is_channel(ch) and " whose id was changed" or ""), 3)
    end
    return id
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
    call({op = "channel.send", id = channel_id(self, "ch:send"), value = value})
    return true
end

-- receive() -> value, ok (ok is false once the channel is closed and drained)
function Channel:receive()
    local value, got = call({op = "channel.receive", id = channel_id(self, "ch:receive")})
    local wrap = field(self, "wrap", "function")
    if got and wrap then value = wrap(value) end
    return value, got
end

function Channel:close()
    call({op = "channel.close", id = channel_id(self, "ch:close")})
end

function Channel:case_receive()
    channel_id(self, "ch:case_receive")
    return setmetatable({channel = self, send = false}, Case)
end

function Channel:case_send(value)
    channel_id(self, "ch:case_send")
    return setmetatable({channel = self, send = true, value = value}, Case)
end

-- channel.select{ch1:case_receive(), ch2:case_send(v), default = true}
--   -> {channel = ch, value = v, ok = ok}; {default = true} when nothing was ready.
-- The first ready case in the order written wins, so a replay chooses the same one.
function M.select(cases)
    if type(cases) ~= "table" then
        error("channel.select: expected a table of cases, got " .. type(cases), 2)
    end
    -- what the cases hold now, read raw: the table may change while select waits
    local list, channels, n = {}, {}, 0
    for i, case in ipairs(cases) do
        local ch = is_a(case, Case) and field(case, "channel", "table")
        if not ch or not is_channel(ch) or not field(ch, "id", "integer") then
            error("channel.select: case " .. i .. " is not a channel case (use ch:case_receive() or "
                .. "ch:case_send(v))", 2)
        end
        n = n + 1
        channels[n] = ch
        list[n] = {id = field(ch, "id", "integer"), send = field(case, "send", "boolean") == true,
                   value = rawget(case, "value")}
    end
    local index, value, got = call({op = "channel.select", cases = list, n = n,
                                    default = cases.default and true or false})
    if index == 0 then return {default = true, ok = false} end
    local ch = channels[index]
    local wrap = field(ch, "wrap", "function")
    if not list[index].send and got and wrap then value = wrap(value) end
    return {channel = ch, value = value, ok = got}
end

return M
