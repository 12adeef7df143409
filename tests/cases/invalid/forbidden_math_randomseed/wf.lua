local function main(input)
    math.randomseed(42)
    return 1
end

return { main = main }
