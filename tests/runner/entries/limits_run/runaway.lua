-- input.mode picks the limit this run breaks, after a timer (so in a later workflow task).
local function main(input)
    time.sleep("50ms")
    if input.mode == "loop" then
        while true do end
    elseif input.mode == "memory" then
        local hoard = {}
        for i = 1, 1e9 do hoard[i] = {i, i, i} end
    elseif input.mode == "recursion" then
        local function deeper(n) return 1 + deeper(n + 1) end
        local depth = deeper(1)
        return depth
    elseif input.mode == "recursion_through_pcall" then
        local function nest(n) local _, depth = pcall(nest, n + 1) return depth end
        local depth = nest(1)
        return depth
    elseif input.mode == "giant_string" then
        local giant = string.rep("x", 1 << 30)
        return #giant
    end
    return "unknown mode"
end

return { main = main }
