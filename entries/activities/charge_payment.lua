-- charge_payment: take `amount` from the customer.
-- Input {amount = 42, customer = "c-1"}; returns {id = "pay-…", amount = 42}.
local uuid = require("uuid")
local errors = require("errors")

local function main(payment)
    local amount = type(payment) == "table" and payment.amount or nil
    if type(amount) ~= "number" or amount <= 0 then
        -- INVALID is in this activity's non_retryable_error_kinds: retrying cannot fix the input.
        return nil, errors.new({
            kind = "INVALID",
            message = "amount must be a positive number, got " .. tostring(amount),
            retryable = false,
        })
    end
    -- A real integration would call the payment provider here (from a function.python activity).
    return {id = "pay-" .. uuid.v4(), amount = amount}
end

return { main = main }
