local funcs = require("funcs")

local function main(input)
    return funcs.call("app:act", input)
end

return { main = main }
