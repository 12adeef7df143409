---@meta json

---JSON text in and out.
---@class jsonlib
---@field null any JSON `null` inside a table.
json = {}

---JSON text of a JSON-shaped value.
---
---Errors: `nil, err` for values that cannot be sent (functions, NaN, cycles...)
---@param value any
---@return string? text
---@return Error? err
function json.encode(value) end

---The value of JSON text.
---
---Errors: `nil, err` for text that is not JSON
---@param text string
---@return any value
---@return Error? err
function json.decode(text) end

---`t` (or a new table), marked in place: sent as `[]` when empty, wherever it leaves the run.
---
---Errors: raises on a non-table, `json.null` or a table with a metatable of its own (a json mark is replaced)
---@param t? table
---@return table t
function json.array(t) end

---`t` (or a new table), marked in place: sent as `{}` when empty, wherever it leaves the run.
---
---Errors: raises on a non-table, `json.null` or a table with a metatable of its own (a json mark is replaced)
---@param t? table
---@return table t
function json.object(t) end

return json
