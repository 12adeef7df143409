local function main(input)
    return tostrnig(input)
end

return { main = main }
