-- Reserves an order's item, or fails the way a real inventory service would.
local function main(order)
    if order.sku == nil then
        return nil, errors.new({kind = "INVALID", message = "the order names no sku", retryable = false})
    end
    if order.sku == "discontinued" then
        return nil, errors.new({kind = "NOT_FOUND", message = "sku discontinued is not in the catalog",
                                retryable = false})
    end
    if order.quantity > 10 then
        -- a user-defined kind; retryable, since stock may arrive before the next attempt
        return nil, errors.new({kind = "OUT_OF_STOCK", message = "only 10 left of " .. order.sku,
                                retryable = true})
    end
    return {reserved = order.sku, quantity = order.quantity}
end

return { main = main }
