local function main(input)
    local out = io.write("x")
    return out
end

return { main = main }
