local test = require("test")

local function test_completes()
    local result, err = test.run("{{namespace}}:order_saga", {id = "o-1", sku = "book", total = 42})
    test.eq(err, nil)
    test.eq(result.status, "completed")
end

local function test_a_declined_charge_releases_the_stock()
    local result = test.run("{{namespace}}:order_saga", {id = "o-2", sku = "book", total = 5000})
    test.eq(result.status, "compensated")
    test.ok(result.error:find("DECLINED"), result.error)
    test.eq(test.commands(), {"activity {{namespace}}:reserve_inventory", "activity {{namespace}}:charge_payment",
                              "activity {{namespace}}:release_inventory", "complete"})
end

return {
    test_completes = test_completes,
    test_a_declined_charge_releases_the_stock = test_a_declined_charge_releases_the_stock,
}
