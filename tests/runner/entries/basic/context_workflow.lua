-- ctx values given at start reach the workflow and the activities it calls.
local function main()
    local seen, err = funcs.call("app:context_activity")
    if err then return nil, err end
    return {workflow_tenant = ctx.get("tenant"), activity_sees = seen}
end

return { main = main }
