local function main(input)
    goto done
    return 1
end

return { main = main }
