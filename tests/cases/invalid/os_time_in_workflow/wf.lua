local function main(input)
    return {at = os.time()}
end

return { main = main }
