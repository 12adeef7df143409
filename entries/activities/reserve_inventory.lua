-- reserve_inventory: hold stock for the order's items.
-- Input: a list of items ({{sku = "A-1", qty = 2}, ...}); returns {id = "res-…", items = 1}.
local uuid = require("uuid")
local errors = require("errors")

local function main(items)
    if type(items) ~= "table" or #items == 0 then
        return nil, errors.new({kind = "INVALID", message = "nothing to reserve: items is empty", retryable = false})
    end
    return {id = "res-" .. uuid.v4(), items = #items}
end

return { main = main }
