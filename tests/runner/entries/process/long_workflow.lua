-- A child that works for a while: input.iterations short sleeps.
local function main(input)
    for _ = 1, input.iterations or 1 do
        time.sleep("20ms")
    end
    return {iterations = input.iterations}
end

return { main = main }
