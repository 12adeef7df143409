local function main(input)
    return "charged " .. tostring(input.amount)
end

return { main = main }
