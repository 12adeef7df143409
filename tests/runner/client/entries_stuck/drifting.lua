-- Starts a timer, then waits for "done". The test replaces the timer by a different command
-- (an incompatible change) while a run is open: replaying that run is nondeterministic.
local function main()
    time.sleep("1h")
    local done = process.listen("done")
    done:receive()
    return "done"
end

return { main = main }
