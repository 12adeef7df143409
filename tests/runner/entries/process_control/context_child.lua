-- Reads its context, and asks an activity what it sees.
local function main()
    local seen, err = funcs.call("app:context_probe")
    if err then return nil, err end
    return {user_id = ctx.get("user_id"), tenant = ctx.get("tenant"), all = ctx.all(), activity = seen}
end

return { main = main }
