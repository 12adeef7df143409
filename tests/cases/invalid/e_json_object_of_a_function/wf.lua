local marked = json.object(function() return {} end)

local function main(input)
    return marked
end

return { main = main }
