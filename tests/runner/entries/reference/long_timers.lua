-- The reference's timers, verbatim: a day, five minutes, thirty seconds and 100 ms. Durable, so
-- they survive worker restarts (tests run this on the time-skipping server).
local time = require("time")

local function main()
    local start = time.now()
    time.sleep("24h")
    time.sleep("5m")
    time.sleep("30s")
    time.sleep(100 * time.MILLISECOND)
    return {elapsed_ms = time.now():sub(start):milliseconds()}
end

return { main = main }
