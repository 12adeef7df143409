-- Tries to replace a running workflow it did not spawn (docs/sandbox.md, Authority): refused.
local function main(input)
    local options = {["temporal.workflow.id"] = input.id, ["temporal.workflow.id_conflict_policy"] = "terminate_existing"}
    local pid, err = process.with_options(options):spawn("app:child_workflow", "app:worker", {message = "mine now"})
    return {pid = pid and tostring(pid), kind = err and err:kind(), message = err and err:message()}
end

return { main = main }
