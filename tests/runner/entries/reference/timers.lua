-- Durable timers of several lengths, written the ways the time module accepts them.
local time = require("time")

local function main()
    local start = time.now()
    -- time.after starts a timer now and returns a channel that receives the time it fired;
    -- it runs while the sleeps below wait.
    local deadline = time.after("300ms")
    time.sleep("200ms")                 -- a duration string
    time.sleep(100 * time.MILLISECOND)  -- a Duration
    time.sleep(150)                     -- a number: milliseconds
    local fired_at = deadline:receive()
    return {
        elapsed_ms = time.now():sub(start):milliseconds(),
        deadline_ms = fired_at:sub(start):milliseconds(),
    }
end

return { main = main }
