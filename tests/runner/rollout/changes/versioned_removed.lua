-- Breaking: the workflow.version call is gone, but open runs recorded its marker.
local function main()
    process.listen("ship"):receive()
    return {version = 2}
end

return { main = main }
