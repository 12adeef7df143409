local function main(input)
    return {pick = math.random(10)}
end

return { main = main }
