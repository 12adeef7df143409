local function main(input)
    local pricing = require("pricing")
    return pricing.total(input)
end

return { main = main }
