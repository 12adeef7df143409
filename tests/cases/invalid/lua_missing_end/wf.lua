local function main(input)
    if input then
        return 1
    end

return { main = main }
