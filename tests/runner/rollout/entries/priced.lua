-- Imports a library, so a change to the library alone reaches this workflow's runs.
local prices = require("prices")

local function main(input)
    return {total = prices.total(input.amount)}
end

return { main = main }
