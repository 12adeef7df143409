local function main(input)
    return "refunded " .. tostring(input.amount)
end

return { main = main }
