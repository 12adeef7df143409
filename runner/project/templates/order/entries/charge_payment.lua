-- An activity: takes `amount`, returns a payment; a bad amount is INVALID (never retried).
local function main(payment)
    local amount = type(payment) == "table" and payment.amount or nil
    if type(amount) ~= "number" or amount <= 0 then
        return nil, errors.new({kind = "INVALID", message = "amount must be a positive number", retryable = false})
    end
    return {id = "pay-" .. uuid.v4(), amount = amount}
end

return { main = main }
