local function main(input)
    local limit <const> = 3
    limit = 4
    return limit
end

return { main = main }
