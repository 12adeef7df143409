-- One saga step (reserve, charge, release, refund): answers "<action>:<order id>".
return { main = function(action, order_id) return action .. ":" .. order_id end }
