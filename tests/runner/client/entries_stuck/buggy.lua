-- A bug: error() with a plain string fails the workflow *task*, and Temporal retries it forever.
local function main()
    local order = nil
    error("bug: no order " .. tostring(order))
end

return { main = main }
