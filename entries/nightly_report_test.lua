-- Tests for app:nightly_report (the workflow the `app:nightly` schedule starts every night).
local test = require("test")

local function test_counts_the_orders_by_status_and_mails_the_summary()
    local mailed = {}
    local result, err = test.run("app:nightly_report", {
        to = "ops@example.com",
        orders = {{status = "shipped"}, {status = "failed"}, {status = "shipped"}},
    }, {
        mocks = {["app:send_email"] = function(message)
            mailed[#mailed + 1] = message
            return {sent = true}
        end},
    })
    test.eq(err, nil)
    test.eq(result, {to = "ops@example.com", orders = 3, summary = "failed: 1, shipped: 2"})
    test.eq(mailed, {{to = "ops@example.com", body = "nightly report: failed: 1, shipped: 2"}})
end

local function test_a_quiet_night_still_sends_a_report()
    local result = test.run("app:nightly_report", {to = "ops@example.com"})
    test.eq(result.summary, "no orders")
    test.eq(test.commands(), {"activity app:send_email", "complete"})
end

return {
    test_counts_the_orders_by_status_and_mails_the_summary = test_counts_the_orders_by_status_and_mails_the_summary,
    test_a_quiet_night_still_sends_a_report = test_a_quiet_night_still_sends_a_report,
}
