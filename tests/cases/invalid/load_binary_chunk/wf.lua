local function main(input)
    local f = load(input.code, "user", "bt")
    return f()
end

return { main = main }
