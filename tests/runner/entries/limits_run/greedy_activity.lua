-- An activity that breaks a limit of its own sandbox: input.mode "memory" or "loop".
local function main(input)
    if input.mode == "memory" then
        local giant = string.rep("y", 1 << 30)
        return #giant
    end
    while true do end
end

return { main = main }
