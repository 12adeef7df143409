local function main(input)
    return funcs.call("{{namespace}}:greet", input.name)
end

return { main = main }
