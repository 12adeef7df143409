---@meta uuid

---UUIDs; in a workflow from its deterministic random source (the same on replay).
---@class uuidlib
uuid = {}

---A random UUID.
---@return string id
function uuid.v4() end

---A time-ordered UUID.
---@return string id
function uuid.v7() end

return uuid
