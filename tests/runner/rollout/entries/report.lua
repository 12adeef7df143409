-- Served by a pinned worker: an apply never moves its runs, so the gate never replays them.
local function main(input)
    return funcs.call("gate:charge", {amount = input.amount})
end

return { main = main }
