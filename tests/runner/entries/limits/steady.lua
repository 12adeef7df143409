-- Sleeps, then answers: it must complete while other runs on the worker hit limits.
local function main(input)
    time.sleep(input.wait or "500ms")
    return {ok = true}
end

return { main = main }
