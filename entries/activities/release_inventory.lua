-- release_inventory: give back stock held by reserve_inventory (a saga compensation).
-- Input: the reservation id ("res-…"); returns {released = "res-…"}.
local errors = require("errors")

local function main(reservation_id)
    if type(reservation_id) ~= "string" or reservation_id == "" then
        return nil, errors.new({kind = "INVALID", message = "release needs a reservation id", retryable = false})
    end
    -- Releasing twice is harmless, so retries after a timeout are safe.
    return {released = reservation_id}
end

return { main = main }
