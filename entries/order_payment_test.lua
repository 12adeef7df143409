-- Tests for app:order_payment: the payment provider's webhook finishes a pending activity from
-- outside (async completion). A `pending` handler of test.run plays the provider: it gets the
-- activity's task token and input once the activity has returned activity.pending().
local test = require("test")
local errors = require("errors")

local function test_a_confirmed_payment_pays_the_order()
    local requests = {}
    local result, err = test.run("app:order_payment", {id = "o-21", total = 42}, {
        pending = {["app:await_payment_confirmation"] = function(pending)
            requests[#requests + 1] = pending.input
            test.complete_activity(pending.token, {reference = "psp-21"})   -- the provider's webhook
        end},
    })
    test.eq(err, nil)
    test.eq(result, {status = "paid", order_id = "o-21", payment_reference = "psp-21"})
    test.eq(requests, {{order_id = "o-21", amount = 42}})
    test.eq(test.commands(), {"activity app:await_payment_confirmation", "complete"})
end

local function test_a_declined_payment_is_not_retried()
    local attempts = 0
    local result = test.run("app:order_payment", {id = "o-22", total = 42}, {
        pending = {["app:await_payment_confirmation"] = function(pending)
            attempts = attempts + 1
            test.fail_activity(pending, errors.new({kind = "DECLINED", message = "card declined", retryable = false}))
        end},
    })
    test.eq(result, {status = "payment_declined", order_id = "o-22", reason = "card declined"})
    test.eq(attempts, 1)
end

local function test_a_webhook_confirms_only_once()
    local token
    local result = test.run("app:order_payment", {id = "o-23", total = 42}, {
        pending = {["app:await_payment_confirmation"] = function(pending)
            token = pending.token
            test.heartbeat_activity(pending, {progress = "card authorised"})
            test.complete_activity(pending, {reference = "psp-23"})
        end},
    })
    test.eq(result.status, "paid")
    test.fails(function() test.complete_activity(token, {reference = "psp-again"}) end, "not open")
end

local function test_no_confirmation_in_time_fails_the_payment()
    -- a pending activity's timeout is not skipped on the test server: a mock stands in for it
    local result = test.run("app:order_payment", {id = "o-24", total = 42}, {
        mocks = {["app:await_payment_confirmation"] = function()
            return nil, errors.new({kind = "TIMEOUT", message = "no confirmation within 24h", retryable = false})
        end},
    })
    test.eq(result, {status = "payment_failed", order_id = "o-24", error = "TIMEOUT"})
end

return {
    test_a_confirmed_payment_pays_the_order = test_a_confirmed_payment_pays_the_order,
    test_a_declined_payment_is_not_retried = test_a_declined_payment_is_not_retried,
    test_a_webhook_confirms_only_once = test_a_webhook_confirms_only_once,
    test_no_confirmation_in_time_fails_the_payment = test_no_confirmation_in_time_fails_the_payment,
}
