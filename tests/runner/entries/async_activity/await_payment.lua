-- Hands its task token to the "provider" (here: its heartbeat details, read by the test) and stays open.
local function main(_input)
    local info = activity.info()
    activity.heartbeat({token = info.task_token, attempt = info.attempt})
    return activity.pending()
end

return { main = main }
