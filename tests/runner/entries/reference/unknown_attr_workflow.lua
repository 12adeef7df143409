-- Sets a search attribute the namespace does not have: Temporal rejects the workflow task,
-- and the failure names the attribute (register it, then the run continues).
local workflow = require("workflow")

local function main()
    workflow.attrs({search = {flowctl_never_registered = "x"}})
    return "unreachable until the attribute is registered"
end

return { main = main }
