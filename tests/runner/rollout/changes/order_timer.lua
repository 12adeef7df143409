-- Breaking: a timer before the activity a run already recorded.
local function main(input)
    time.sleep("1s")
    local receipt = funcs.call("gate:charge", {amount = input.amount})
    process.listen("ship"):receive()
    return {receipt = receipt, code = "B"}
end

return { main = main }
