local function main(input)
    local f = io.open("data.txt")
    return f
end

return { main = main }
