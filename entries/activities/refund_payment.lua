-- refund_payment: give back a payment made by charge_payment (a saga compensation).
-- Input: the payment id ("pay-…"); returns {id = "ref-…", payment_id = "pay-…"}.
local uuid = require("uuid")
local errors = require("errors")

local function main(payment_id)
    if type(payment_id) ~= "string" or payment_id == "" then
        return nil, errors.new({kind = "INVALID", message = "refund needs a payment id", retryable = false})
    end
    return {id = "ref-" .. uuid.v4(), payment_id = payment_id}
end

return { main = main }
