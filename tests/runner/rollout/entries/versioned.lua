-- Records version 2 of "ship-v2" (a marker in its history), then waits for "ship".
local function main()
    local version = workflow.version("ship-v2", 1, 2)
    process.listen("ship"):receive()
    return {version = version}
end

return { main = main }
