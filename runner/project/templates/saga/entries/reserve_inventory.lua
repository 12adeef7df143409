local function main(request)
    return {id = "res-" .. uuid.v4(), sku = request.sku}
end

return { main = main }
