local function main(input)
    local x <immutable> = 1
    return x
end

return { main = main }
