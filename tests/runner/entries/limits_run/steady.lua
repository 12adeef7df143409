-- Waits, then answers: it must complete while other runs on the worker break limits.
local function main(input)
    time.sleep(input.wait)
    return {ok = true}
end

return { main = main }
