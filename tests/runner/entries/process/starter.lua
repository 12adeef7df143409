-- Reference/003 "starting workflows": monitored spawn, names, explicit ids and the conflict policies.
local function main(input)
    local out = {}
    local events = process.events()

    -- spawn_monitored: an EXIT event when it completes
    local pid = process.spawn_monitored("app:child_workflow", "app:worker", {message = "m1"})
    local event = events:receive()
    out.monitored = {kind = event.kind, echo = event.result.value.echo, same = event.from == pid}

    -- with_name: an idempotent start; the same name while it runs gives the same pid
    local named = process.with_options({}):with_name(input.prefix .. "-named")
    local first = named:spawn_monitored("app:long_workflow", "app:worker", {iterations = 5})
    local again = named:spawn_monitored("app:long_workflow", "app:worker", {iterations = 5})
    out.named = {same = first == again, id = tostring(first)}
    event = events:receive()
    out.named.exit = {kind = event.kind, value = event.result.value, same = event.from == first}

    -- an explicit workflow id, and what happens when it is taken
    local id = input.prefix .. "-order"
    local function with_id(options)
        options["temporal.workflow.id"] = id
        return process.with_options(options)
    end
    local running = with_id({}):spawn("app:long_workflow", "app:worker", {iterations = 50})
    local _, fail_err = with_id({["temporal.workflow.id_conflict_policy"] = "fail"})
        :spawn("app:long_workflow", "app:worker", {iterations = 1})
    local _, already_err = with_id({["temporal.workflow.execution_error_when_already_started"] = true})
        :spawn("app:long_workflow", "app:worker", {iterations = 1})
    local reused = with_id({}):spawn("app:long_workflow", "app:worker", {iterations = 1})
    out.explicit = {id = tostring(running), fail = fail_err and fail_err:kind(),
                    already = already_err and already_err:kind(), reused = reused == running}

    -- terminate_existing: the running one is terminated, a new one starts under the same id
    local replaced, replace_err = with_id({["temporal.workflow.id_conflict_policy"] = "terminate_existing"})
        :spawn("app:child_workflow", "app:worker", {message = "replacement"})
    out.replaced = {err = replace_err and tostring(replace_err), same_id = replaced and tostring(replaced) == id,
                    new_run = replaced and replaced.run_id ~= running.run_id}
    local exits = {}
    for _ = 1, 2 do
        event = events:receive()
        exits[#exits + 1] = {kind = event.kind, error = event.result.error and event.result.error:kind(),
                             echo = event.result.value and event.result.value.echo}
    end
    out.replaced.exits = exits
    return out
end

return { main = main }
