-- Topic subscription: jobs arrive on "add_job" until "exit" (or, when input.idle is set, until
-- no message came for that long).
local function main(input)
    local results = {}
    local job_ch = process.listen("add_job")
    local exit_ch = process.listen("exit")
    local ended = "exit"

    while true do
        local cases = {job_ch:case_receive(), exit_ch:case_receive()}
        local timeout = input.idle and time.after(input.idle)
        if timeout then cases[3] = timeout:case_receive() end
        local result = channel.select(cases)

        if result.channel == exit_ch then
            break
        elseif result.channel == timeout then
            ended = "idle"
            break
        elseif result.channel == job_ch then
            local job_data = result.value
            local activity_result, err = funcs.call(
                "app:echo_activity",
                {job_id = job_data.id, data = job_data}
            )
            table.insert(results, {
                job_id = job_data.id,
                result = activity_result
            })
        end
    end

    return {total_jobs = #results, results = results, ended = ended}
end

return { main = main }
