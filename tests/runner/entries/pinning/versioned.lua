-- Takes a workflow.version branch, then waits for "done": an open run with a recorded version.
local function main()
    local v = workflow.version("greeting-v2", 1, 2)
    local done = process.listen("done")
    done:receive()
    return {version = v}
end

return { main = main }
