-- The Lua half of `print` and the `log` module (the Python half: log.py). Returns the module
-- and the print function.
local kit = ...
local call, where, tostring = kit.call, kit.where, kit.tostring
local type, error, ipairs = type, error, ipairs
local pack, concat = table.pack, table.concat
local M = {}

local function emit(level, message, fields)
    call({op = "log", level = level, message = message, fields = fields, where = where(3)}, 3)
end

for _, level in ipairs({"debug", "info", "warn", "error"}) do
    M[level] = function(message, fields)
        if fields ~= nil and type(fields) ~= "table" then
            error("log." .. level .. ": fields must be a table", 2)
        end
        emit(level, tostring(message), fields)
    end
end

-- print(...) is log.info of its arguments joined by tabs, like Lua's own print
local function print_(...)
    local parts = pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    emit("info", concat(parts, "\t", 1, parts.n))
end

return M, print_
