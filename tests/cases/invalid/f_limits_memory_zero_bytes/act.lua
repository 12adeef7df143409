local function main(input)
    return input
end

return { main = main }
