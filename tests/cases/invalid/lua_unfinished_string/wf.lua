local function main(input)
    return "oops
end

return { main = main }
