local function main(input)
    local activity = require("activity")
    return activity.info()
end

return { main = main }
