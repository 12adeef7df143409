local function main(request)
    return {released = request.reservation}
end

return { main = main }
