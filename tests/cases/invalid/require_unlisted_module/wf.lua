local funcs = require("funcs")
local time = require("time")

local function main(input)
    time.sleep("1s")
    return funcs.call("app:act", input)
end

return { main = main }
