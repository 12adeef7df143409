-- input.mode picks how this run breaks a limit (or calls an activity that does).
local function main(input)
    time.sleep("100ms")   -- the limit is hit in a later workflow task, after a timer
    if input.mode == "loop" then
        while true do end
    elseif input.mode == "memory" then
        local hoard = {}
        for i = 1, 1e9 do hoard[i] = {i, i, i} end
    elseif input.mode == "recursion" then
        local function deeper(n) return 1 + deeper(n + 1) end
        return deeper(1)
    elseif input.mode == "string" then
        return #string.rep("x", 1 << 30)
    elseif input.mode == "activity" then
        local _, err = funcs.call("app:hungry_activity")
        return {kind = err and err:kind(), retryable = err and err:retryable(), message = err and err:message()}
    end
end

return { main = main }
