local function main(input)
    local x = = 1
    return x
end

return { main = main }
