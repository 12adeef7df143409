-- Calls an activity that fails on every attempt (retried forever): a pending activity with a last failure.
local funcs = require("funcs")

local function main()
    return funcs.call("stuck:always_fails", {})
end

return { main = main }
