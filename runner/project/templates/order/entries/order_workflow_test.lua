-- `flowctl test`: runs on Temporal's time-skipping server, so the day-long timer takes no time.
local test = require("test")

local function test_ships_after_a_day()
    local result, err = test.run("{{namespace}}:order_workflow", {id = "o-1", total = 42, ship_after = "24h"})
    test.eq(err, nil)
    test.eq(result.status, "shipped")
    test.ok(result.payment_id:match("^pay%-"), result.payment_id)
end

local function test_a_bad_amount_fails_the_order()
    local result = test.run("{{namespace}}:order_workflow", {id = "o-2", total = -1})
    test.eq(result.status, "failed")
    test.ok(result.error:find("INVALID"), result.error)
end

return {
    test_ships_after_a_day = test_ships_after_a_day,
    test_a_bad_amount_fails_the_order = test_a_bad_amount_fails_the_order,
}
