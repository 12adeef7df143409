local function main(input)
    local libs = {table, io}
    return #libs
end

return { main = main }
