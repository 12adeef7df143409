-- Two recorded steps around a durable timer: a killed worker must not repeat the first.
local function main(input)
    local first = funcs.call("crash:record", {step = "before"})
    time.sleep(input.sleep or "3s")
    local second = funcs.call("crash:record", {step = "after"})
    return {first = first, second = second}
end

return { main = main }
