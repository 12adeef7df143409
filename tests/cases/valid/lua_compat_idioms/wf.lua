local compat = require("compat")

local function main(input)
    local here = compat.demo(input)
    local there = funcs.call("app:act", input)
    return {workflow = here, activity = there}
end

return { main = main }
