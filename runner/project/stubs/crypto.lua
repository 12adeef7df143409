---@meta crypto

---Random bytes; in a workflow deterministic (not for secrets: make those in an activity).
---@class cryptolib
crypto = {}

---`n` random bytes.
---@param n integer
---@return string bytes
function crypto.random_bytes(n) end

---`n` random bytes as 2n hex digits.
---@param n integer
---@return string hex
function crypto.random_hex(n) end

return crypto
