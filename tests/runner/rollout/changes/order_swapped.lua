-- Breaking: the first activity is another one, so a run that recorded gate:charge cannot replay.
local function main(input)
    local receipt = funcs.call("gate:refund", {amount = input.amount})
    process.listen("ship"):receive()
    return {receipt = receipt, code = "B"}
end

return { main = main }
