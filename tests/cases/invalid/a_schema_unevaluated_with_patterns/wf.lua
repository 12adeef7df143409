local function main(input)
    return {echo = input}
end

return { main = main }
