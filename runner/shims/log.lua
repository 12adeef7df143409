-- The Lua half of `print` and the `log` module (the Python half: log.py). Returns the module
-- and the print function.
local kit = ...
local call, where, tostring, valid_text = kit.call, kit.where, kit.tostring, kit.valid_text
local type, error, ipairs = kit.type, kit.error, kit.ipairs
local pack, concat = kit.pack, kit.concat
local M = {}

local function emit(level, message, fields)
    -- any bytes may be printed: the line Python logs is valid UTF-8
    call({op = "log", level = level, message = valid_text(message), fields = fields,
          where = valid_text(where(3))}, 3)
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
