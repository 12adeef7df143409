-- Fails every attempt with a retryable error.
local function main()
    return nil, errors.new({kind = "UNAVAILABLE", message = "the warehouse is down", retryable = true})
end

return { main = main }
