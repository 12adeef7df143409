-- Calls the greedy activity and reports the error it got back.
local function main(input)
    local _, err = funcs.call("limits:greedy_activity", input)
    if err == nil then return {kind = "none"} end
    return {kind = err:kind(), retryable = err:retryable(), message = err:message()}
end

return { main = main }
