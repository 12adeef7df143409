-- What a run knows about itself.
local workflow = require("workflow")

local function main()
    local info = workflow.info()
    print(info.workflow_id)    -- Workflow execution ID
    print(info.run_id)         -- Current run ID
    print(info.workflow_type)  -- Workflow type name
    print(info.task_queue)     -- Task queue name
    print(info.namespace)      -- Temporal namespace
    print(info.attempt)        -- Current attempt number
    print(info.history_length) -- Number of history events
    print(info.history_size)   -- History size in bytes
    return {
        workflow_id = info.workflow_id,
        run_id = info.run_id,
        workflow_type = info.workflow_type,
        task_queue = info.task_queue,
        namespace = info.namespace,
        attempt = info.attempt,
        history_length = info.history_length,
        history_size = info.history_size,
    }
end

return { main = main }
