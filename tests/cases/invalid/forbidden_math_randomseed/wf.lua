local function main(input)
    math.randomseed()
    return 1
end

return { main = main }
