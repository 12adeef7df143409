-- The timer change guarded by workflow.version: runs that started before it skip the timer.
local function main(input)
    local version = workflow.version("sleep-before-charge", 1, 2)
    if version == 2 then
        time.sleep("1s")  -- new runs only
    end
    local receipt = funcs.call("gate:charge", {amount = input.amount})
    process.listen("ship"):receive()
    return {receipt = receipt, code = "B", version = version}
end

return { main = main }
