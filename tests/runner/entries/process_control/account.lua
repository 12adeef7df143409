-- Queries and updates: a balance that updates change (validated first) and a query reads.
local function main(input)
    local balance = input.balance or 0
    local operations = {}
    local closed = channel.new(1)

    workflow.on_query("balance", function()
        return {balance = balance, operations = #operations}
    end)

    workflow.on_query("operation", function(n)
        return operations[n]
    end)

    -- An update handler may wait; the validator runs first and rejects bad input (false, reason).
    workflow.on_update("deposit", function(amount)
        time.sleep("50ms")
        balance = balance + amount
        operations[#operations + 1] = {kind = "deposit", amount = amount}
        return balance
    end, function(amount)
        if math.type(amount) ~= "integer" or amount <= 0 then
            return false, "a deposit must be a positive integer"
        end
        return true
    end)

    -- A validator may also raise; the handler itself may fail the update (not the workflow).
    workflow.on_update("withdraw", function(amount)
        if amount > balance then
            return nil, errors.new({kind = "INSUFFICIENT_FUNDS", message = "balance is " .. balance})
        end
        balance = balance - amount
        operations[#operations + 1] = {kind = "withdraw", amount = amount}
        return balance
    end, function(amount)
        if math.type(amount) ~= "integer" then error("withdraw takes an integer amount") end
        if amount <= 0 then error(errors.new({kind = "INVALID", message = "withdraw a positive amount"})) end
    end)

    workflow.on_update("close", function()
        closed:send(true)
        return "closing"
    end)

    closed:receive()
    return {balance = balance, operations = operations}
end

return { main = main }
