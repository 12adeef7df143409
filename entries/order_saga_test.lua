-- Tests for app:order_saga: when a step fails, the finished steps are undone, most recent first.
local test = require("test")

local ORDER = {
    items = {{sku = "A-1", qty = 2}},
    payment = {amount = 42, customer = "c-1"},
    shipping = {address = "1 Main St"},
}

-- Mocks for the whole saga that write each call into `calls`, so a test can assert the order.
local function recording_mocks(calls, overrides)
    local function record(name, result)
        return function(input)
            table.insert(calls, name)
            return result
        end
    end
    local mocks = {
        ["app:reserve_inventory"] = record("reserve_inventory", {id = "res-1"}),
        ["app:charge_payment"] = record("charge_payment", {id = "pay-1"}),
        ["app:ship_order"] = record("ship_order", {tracking_number = "TRK-1"}),
        ["app:refund_payment"] = record("refund_payment", {id = "ref-1"}),
        ["app:release_inventory"] = record("release_inventory", {released = "res-1"}),
    }
    for id, fn in pairs(overrides or {}) do mocks[id] = fn end
    return mocks
end

local function test_completes_when_every_step_succeeds()
    local calls = {}
    local result, err = test.run("app:order_saga", ORDER, {mocks = recording_mocks(calls)})
    test.eq(err, nil)
    test.eq(result, {status = "completed", tracking = "TRK-1"})
    test.eq(calls, {"reserve_inventory", "charge_payment", "ship_order"})
end

local function test_a_failed_shipment_refunds_then_releases()
    local calls = {}
    local result = test.run("app:order_saga", ORDER, {mocks = recording_mocks(calls, {
        ["app:ship_order"] = function(shipping)
            table.insert(calls, "ship_order")
            return nil, errors.new({kind = "NOT_FOUND", message = "unknown address " .. shipping.address})
        end,
    })})
    test.eq(result.status, "failed")
    test.eq(result.step, "shipping")
    -- compensations run in reverse order of the steps they undo
    test.eq(calls, {"reserve_inventory", "charge_payment", "ship_order", "refund_payment", "release_inventory"})
    test.golden("order_saga_shipping_fails")
end

local function test_a_declined_payment_only_releases_the_stock()
    local calls = {}
    local result = test.run("app:order_saga", ORDER, {mocks = recording_mocks(calls, {
        ["app:charge_payment"] = function()
            table.insert(calls, "charge_payment")
            return nil, errors.new({kind = "DECLINED", message = "card declined", retryable = false})
        end,
    })})
    test.eq(result.step, "payment")
    test.ok(result.error:find("DECLINED: card declined", 1, true), result.error)
    test.eq(calls, {"reserve_inventory", "charge_payment", "release_inventory"})
end

local function test_the_real_activities_compensate_an_unknown_address()
    -- no mocks: the example activities run for real, and ship_order knows no address "unknown"
    local result = test.run("app:order_saga", {
        items = ORDER.items, payment = ORDER.payment, shipping = {address = "unknown"},
    })
    test.eq(result.step, "shipping")
    test.eq(test.commands(), {
        "activity app:reserve_inventory",
        "activity app:charge_payment",
        "activity app:ship_order",
        "activity app:refund_payment",
        "activity app:release_inventory",
        "complete",
    })
end

return {
    test_completes_when_every_step_succeeds = test_completes_when_every_step_succeeds,
    test_a_failed_shipment_refunds_then_releases = test_a_failed_shipment_refunds_then_releases,
    test_a_declined_payment_only_releases_the_stock = test_a_declined_payment_only_releases_the_stock,
    test_the_real_activities_compensate_an_unknown_address = test_the_real_activities_compensate_an_unknown_address,
}
