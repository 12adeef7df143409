local function main(input)
    if input.amount <= 0 then
        return nil, errors.new({kind = "INVALID", message = "amount must be positive", retryable = false})
    end
    return {id = "pay-" .. uuid.v4(), amount = input.amount}
end
return {main = main}
