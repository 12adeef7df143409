local function main(input)
    return funcs.call("charge", input)
end

return { main = main }
