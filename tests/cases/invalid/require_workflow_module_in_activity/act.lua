local function main(input)
    local funcs = require("funcs")
    return funcs.call("app:act", input)
end

return { main = main }
