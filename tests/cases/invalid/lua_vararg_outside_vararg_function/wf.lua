local function main(input)
    return ...
end

return { main = main }
