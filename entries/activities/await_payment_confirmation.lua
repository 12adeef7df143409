-- await_payment_confirmation: ask the payment provider to confirm {order_id, amount}, then wait
-- for its webhook without holding a worker slot (async completion, docs/async-activities.md).
-- The provider finishes this attempt from outside with the task token it was handed:
--   flowctl activity complete TOKEN --result '{"reference": "psp-1"}'
--   flowctl activity fail TOKEN --kind DECLINED --message "card declined" --non-retryable
local activity = require("activity")

local function main(payment)
    local info = activity.info()
    -- The fake provider's inbox is this attempt's heartbeat details (`temporal workflow describe`
    -- shows them); a real integration would send the request to the provider's API instead.
    activity.heartbeat({provider_request = {order_id = payment.order_id, amount = payment.amount,
                                            token = info.task_token}})
    return activity.pending()
end

return { main = main }
