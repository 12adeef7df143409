-- Tests for app:order_approval: messages (signals) sent at virtual times.
local test = require("test")

local charge = {["app:charge_payment"] = function(p) return {id = "pay-7", amount = p.amount} end}

local function test_an_approval_after_two_days_charges_the_order()
    local result, err = test.run("app:order_approval", {id = "o-7", total = 42}, {
        mocks = charge,
        signals = {{at = "48h", name = "approve", payload = {by = "ann"}}},
    })
    test.eq(err, nil)
    test.eq(result, {status = "approved", approved_by = "ann", payment_id = "pay-7"})
    test.eq(test.commands(), {"timer 72h", "activity app:charge_payment", "complete"})
end

local function test_a_rejection_stops_the_order_without_a_charge()
    local charged = false
    local result = test.run("app:order_approval", {id = "o-8", total = 42}, {
        mocks = {["app:charge_payment"] = function() charged = true return {id = "never"} end},
        signals = {{at = "1h", name = "reject", payload = {reason = "out of stock"}}},
    })
    test.eq(result, {status = "rejected", reason = "out of stock"})
    test.eq(charged, false)
end

local function test_no_answer_within_three_days_expires()
    local result = test.run("app:order_approval", {id = "o-9", total = 42}, {mocks = charge})
    test.eq(result.status, "expired")
end

local function test_a_late_approval_finds_the_order_expired()
    local err = test.fails(function()
        test.run("app:order_approval", {id = "o-10", total = 42, approve_within = "1h"}, {
            mocks = charge,
            signals = {{at = "2h", name = "approve", payload = {by = "bob"}}},
        })
    end, "already finished")
    test.ok(tostring(err):find("approve"), tostring(err))
end

return {
    test_an_approval_after_two_days_charges_the_order = test_an_approval_after_two_days_charges_the_order,
    test_a_rejection_stops_the_order_without_a_charge = test_a_rejection_stops_the_order_without_a_charge,
    test_no_answer_within_three_days_expires = test_no_answer_within_three_days_expires,
    test_a_late_approval_finds_the_order_expired = test_a_late_approval_finds_the_order_expired,
}
