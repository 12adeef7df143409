-- Charges, then waits for "ship": an open run has the charge in its history while it waits.
local function main(input)
    local receipt = funcs.call("gate:charge", {amount = input.amount})
    process.listen("ship"):receive()
    return {receipt = receipt, code = "A"}
end

return { main = main }
