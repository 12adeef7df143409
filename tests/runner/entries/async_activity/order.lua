-- Waits for an external payment confirmation (await_payment stays pending until completed from outside).
local function main(input)
    local pay = funcs.new()
    if input.heartbeat_timeout then pay = pay:with_options({["activity.heartbeat_timeout"] = input.heartbeat_timeout}) end
    local result, err = pay:call(input.activity or "pay:await_payment", input)
    if err ~= nil then return {kind = err:kind(), retryable = err:retryable(), message = err:message()} end
    return {paid = result}
end

return { main = main }
