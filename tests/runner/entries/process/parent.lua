-- Children: sync (workflow.exec), async (spawn + EXIT), error propagation, process.exec.
local function main(input)
    local out = {}
    local r, err = workflow.exec("app:child_workflow", {message = "sync", n = 1})
    out.sync = r and r.echo or tostring(err)

    local events_ch = process.events()
    local child_pid, err2 = process.spawn("app:child_workflow", "app:worker", {message = "hello from parent"})
    if err2 then return {status = "spawn_failed", error = tostring(err2)} end
    local event = events_ch:receive()
    out.async_kind = event.kind
    out.async_value = event.result.value.echo
    out.async_from_is_child = event.from == child_pid

    process.spawn("app:error_child_workflow", "app:worker")
    local bad = events_ch:receive()
    out.error_kind = bad.result.error:kind()
    out.error_retryable = bad.result.error:retryable()
    out.error_message = bad.result.error:message()

    local res, err3 = process.exec("app:error_child_workflow", "app:worker")
    out.exec_err = err3 and err3:kind()
    return out
end

return { main = main }
