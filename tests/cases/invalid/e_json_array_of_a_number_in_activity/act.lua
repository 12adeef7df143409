local json = require("json")

local function main(input)
    return {tags = json.array(0)}
end

return { main = main }
