local function main(input)
    break
    return 1
end

return { main = main }
