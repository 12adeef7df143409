local compat = require("compat")

local function main(input)
    return compat.demo(input)
end

return { main = main }
