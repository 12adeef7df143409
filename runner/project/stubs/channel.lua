---@meta channel

---Go-style channels between the coroutines of one workflow; replay-safe.
---@class channellib
channel = {}

---A channel buffering `size` values (0: unbuffered).
---@param size? integer
---@return Channel ch
function channel.new(size) end

---Waits for the first ready case in the order written; with `default = true` returns `{default = true}` when none is.
---@param cases Case[]|{default?: boolean}
---@return SelectResult chosen
function channel.select(cases) end

---Whether `v` is a Channel.
---@param v any
---@return boolean is
function channel.is_channel(v) end

return channel
