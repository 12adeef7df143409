local function main(input)
    -- meant as {"1": "a", "2": "b"}, but items 1..n are a list
    return json.object({"a", "b"})
end

return { main = main }
