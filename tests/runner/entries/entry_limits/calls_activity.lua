-- Calls an activity (input.activity) and reports its result, or the error it got back.
local function main(input)
    local result, err = funcs.call(input.activity, {mode = input.mode})
    if err == nil then return {result = result} end
    return {kind = err:kind(), retryable = err:retryable(), message = err:message()}
end

return { main = main }
