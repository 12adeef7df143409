-- An unrelated workflow on the same worker: a few timers, then done.
local function main(input)
    for _ = 1, input.rounds do time.sleep("100ms") end
    return {done = true}
end

return { main = main }
