local function main(input)
    return unpack(input.list)
end

return { main = main }
