-- Track elapsed time with the workflow clock (never the wall clock: it would differ on replay).
local time = require("time")

local function main()
    local start = time.now()
    time.sleep("1s")
    local elapsed = time.now():sub(start):milliseconds()
    return {elapsed_ms = elapsed}
end

return { main = main }
