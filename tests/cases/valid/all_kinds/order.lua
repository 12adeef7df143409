local funcs = require("funcs")
local pricing = require("pricing")

local function run(order)
    local total = pricing.total(order.items or {})
    local executor = funcs.new():with_options({["activity.start_to_close_timeout"] = "30s"})
    local charged, err = executor:call("app:charge", {amount = total})
    if err then
        return nil, err
    end
    local page = funcs.call("fetch", {url = order.url})
    local v = workflow.version("pricing-v2", 1, 2)
    local pid = process
        .with_options({["temporal.workflow.id"] = "order-" .. order.id})
        :with_name("order-" .. order.id)
        :spawn_monitored("app:order", "app:worker", {id = uuid.v4()})
    local ch = channel.new(1)
    local timeout = time.after("5s")
    local result = channel.select{ch:case_receive(), timeout:case_receive()}
    log("charged", charged.id, v, tostring(pid), result.ok, ctx.get("tenant"), crypto.random_bytes(4), page)
    return {ok = true, at = time.now():unix(), id = json.encode({charged.id})}
end

return { run = run }
