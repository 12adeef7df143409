-- Declines amounts over 1000 (DECLINED is never retried: see the entry's retry_policy).
local function main(payment)
    if payment.amount > 1000 then
        return nil, errors.new({kind = "DECLINED", message = "amount over the limit", retryable = false})
    end
    return {id = "pay-" .. uuid.v4()}
end

return { main = main }
