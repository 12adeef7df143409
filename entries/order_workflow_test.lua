-- Tests for app:order_workflow: run with `flowctl test entries` (or `pytest entries`).
-- They run on Temporal's time-skipping test server: the 24 h timer below takes no real time.
local test = require("test")

-- The payment provider is mocked; ship_order runs for real (it is plain Lua).
local function charge_ok(payment)
    return {id = "pay-1", amount = payment.amount}
end

local function test_ships_after_a_day()
    local result, err = test.run("app:order_workflow", {id = "o-1", total = 42, ship_after = "24h"}, {
        mocks = {["app:charge_payment"] = charge_ok},
    })
    test.eq(err, nil)
    test.eq(result.status, "completed")
    test.eq(result.payment_id, "pay-1")
    test.ok(result.tracking:match("^TRK%-"), "a real tracking number from ship_order")
    -- the commands the workflow issued, in order (golden/order_ships_after_a_day.txt)
    test.golden("order_ships_after_a_day")
end

local function test_a_declined_payment_stops_the_order()
    local result, err = test.run("app:order_workflow", {id = "o-2", total = 42}, {
        mocks = {["app:charge_payment"] = function()
            return nil, errors.new({kind = "DECLINED", message = "card declined", retryable = false})
        end},
    })
    test.eq(err, nil)
    test.eq(result.status, "failed")
    test.ok(result.error:find("card declined"), result.error)
    -- no timer, no shipment: only the charge was attempted
    test.eq(test.commands(), {"activity app:charge_payment", "complete"})
end

local function test_an_invalid_amount_is_refused_by_the_real_activity()
    local result = test.run("app:order_workflow", {id = "o-3", total = -5})
    test.eq(result.status, "failed")
    test.ok(result.error:find("INVALID"), result.error)
end

return {
    test_ships_after_a_day = test_ships_after_a_day,
    test_a_declined_payment_stops_the_order = test_a_declined_payment_stops_the_order,
    test_an_invalid_amount_is_refused_by_the_real_activity = test_an_invalid_amount_is_refused_by_the_real_activity,
}
