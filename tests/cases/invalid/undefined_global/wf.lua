local function main(input)
    return compute_total(input)
end

return { main = main }
