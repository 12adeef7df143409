-- ship_order: hand the order to the carrier.
-- Input {order_id = "o-1", address = "..."}; returns {tracking_number = "TRK-…"}.
-- An address the carrier does not know ("unknown" in this demo) fails with kind NOT_FOUND,
-- which is not retried, so the saga example can show its compensations.
local uuid = require("uuid")
local errors = require("errors")

local UNKNOWN_ADDRESSES = {unknown = true, nowhere = true}

local function main(shipment)
    shipment = shipment or {}
    if UNKNOWN_ADDRESSES[shipment.address] then
        return nil, errors.new({
            kind = "NOT_FOUND",
            message = "the carrier does not deliver to " .. tostring(shipment.address),
            retryable = false,
        })
    end
    return {tracking_number = "TRK-" .. string.upper(string.sub(uuid.v4(), 1, 8))}
end

return { main = main }
