local test = require("test")

local function test_counts_messages_until_stop()
    local result, err = test.run("{{namespace}}:counter", {start = 1}, {signals = {
        {at = "1s", name = "add", payload = {n = 2}},
        {at = "2s", name = "add", payload = {n = 3}},
        {at = "3s", name = "stop"},
    }})
    test.eq(err, nil)
    test.eq(result, {total = 6, said = "the count is 6"})
end

local function test_stops_when_idle()
    local result = test.run("{{namespace}}:counter", {start = 0, idle = "1h"})
    test.eq(result.total, 0)
end

return {
    test_counts_messages_until_stop = test_counts_messages_until_stop,
    test_stops_when_idle = test_stops_when_idle,
}
