-- every way to mark a table that the lint accepts: nothing, an empty table, a table of the
-- right form, a computed value (checked at run time), a mixed constructor (its keys decide)
local json = require("json")

local function main(input)
    local list = {1, 2}
    return {
        empty_object = json.object(),
        empty_array = json.array({}),
        object = json.object({a = 1}),
        array = json.array{1, 2},
        marked_later = json.object(list),
        computed = json.object(input.meta or {}),
        nothing = json.array(nil),
        parenthesized = json.object(({})),
        open = json.object({[input.key] = 1}),
    }
end

return { main = main }
