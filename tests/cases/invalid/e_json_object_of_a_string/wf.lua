local function main(input)
    local result = {items = input}
    result.meta = json.object("none")
    return result
end

return { main = main }
