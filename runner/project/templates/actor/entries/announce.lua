local function main(request)
    return "the count is " .. request.total
end

return { main = main }
