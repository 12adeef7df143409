local function main(input)
    local out = json.array{}
    out.extra = json.array{first = input, second = input}
    return out
end

return { main = main }
