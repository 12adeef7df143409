-- Shipping takes a while (the workflow is cancelled meanwhile).
return { main = function(order_id) time.sleep(1500) return "shipped:" .. order_id end }
