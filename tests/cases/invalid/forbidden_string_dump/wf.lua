local function main(input)
    return string.dump(main)
end

return { main = main }
