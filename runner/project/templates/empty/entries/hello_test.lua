local test = require("test")

local function test_greets()
    local greeting, err = test.run("{{namespace}}:hello", {name = "world"})
    test.eq(err, nil)
    test.eq(greeting, "hello, world")
end

return { test_greets = test_greets }
