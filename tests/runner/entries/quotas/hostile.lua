-- Each mode goes past one quota the way the red team did (issue 13); the line numbers are in
-- tests/runner/temporal/test_quotas_e2e.py.
local modes = {}

function modes.timers()                      -- 20,000 timers in one workflow task
    for i = 1, 20000 do time.after("1h") end
end

function modes.self_sends()                  -- 1,500 messages of 1 MiB to itself
    local me, blob = process.self(), string.rep("x", 1 << 20)
    for i = 1, 1500 do process.send(me, "blob", blob) end
end

function modes.small_self_sends()            -- 1,500 messages of 256 KiB, nobody listening
    local me, blob = process.self(), string.rep("x", 256 << 10)
    for i = 1, 1500 do process.send(me, "blob", blob) end
end

function modes.spawns()                      -- coroutines that never end, past the worker's 500
    local never = channel.new(0)
    for i = 1, 100000 do coroutine.spawn(function() never:receive() end) end
end

function modes.error_text()                  -- a 6 MB error message (fails the workflow task)
    error(string.rep("x", 6e6))
end

function modes.error_object()                -- a 6 MB error object (fails the run)
    return nil, errors.new({kind = "CUSTOM", message = string.rep("y", 6e6), retryable = false})
end

function modes.big_result()                  -- a 3 MB result
    return string.rep("z", 3e6)
end

function modes.activity_error()              -- an activity's 6 MB error message, as the workflow sees it
    local _, err = funcs.call("quotas:shout")
    return {kind = err:kind(), bytes = #err:message(), tail = err:message():sub(-70)}
end

local function main(input)
    return modes[input.mode]()
end

return {main = main}
