-- Search attributes make runs findable (Temporal visibility queries); memo is free-form data
-- shown with the run. The search attributes must be registered in the namespace first.
local workflow = require("workflow")

local function main(order)
    workflow.attrs({
        search = {
            status = "processing",
            customer_id = order.customer_id,
            order_total = order.total
        },
        memo = {
            notes = "Priority customer",
            source = "web"
        }
    })
    return {status = "processing"}
end

return { main = main }
