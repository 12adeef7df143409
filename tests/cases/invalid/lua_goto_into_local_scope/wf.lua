local function main(input)
    do goto skip end
    local x = 1
    ::skip::
    return x
end

return { main = main }
