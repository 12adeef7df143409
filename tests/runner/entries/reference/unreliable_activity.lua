-- Prices a line item. A line without a price is a bug in the caller: the arithmetic below
-- raises a Lua runtime error, which fails the attempt as a retryable INTERNAL error.
local function main(line)
    return {total = line.price * line.quantity}
end

return { main = main }
