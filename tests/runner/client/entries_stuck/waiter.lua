-- Healthy and running: waits for the message "done", then returns.
local function main()
    local done = process.listen("done")
    done:receive()
    return "done"
end

return { main = main }
