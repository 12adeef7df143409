local function main(input)
    return input
end
