-- An order that needs a person's approval before the customer is charged.
--
-- Input {id = "o-1", total = 42, approve_within = "72h"}. Messages (Temporal signals):
--   approve {by = "ann"}      -> the order is charged
--   reject  {reason = "..."}  -> the order stops
-- Without either message within `approve_within` (default 72h) the order expires.
local funcs = require("funcs")
local time = require("time")

local function main(order)
    local approvals = process.listen("approve")
    local rejections = process.listen("reject")
    local deadline = time.after(order.approve_within or "72h")

    -- wait for whichever comes first: a message or the deadline
    local first = channel.select({
        approvals:case_receive(),
        rejections:case_receive(),
        deadline:case_receive(),
    })

    if first.channel == rejections then
        return {status = "rejected", reason = first.value and first.value.reason}
    elseif first.channel == deadline then
        return {status = "expired"}
    end

    local approval = first.value or {}
    local payment, err = funcs.call("app:charge_payment", {amount = order.total})
    if err then
        return {status = "failed", approved_by = approval.by, error = tostring(err)}
    end
    return {status = "approved", approved_by = approval.by, payment_id = payment.id}
end

return { main = main }
