-- The nightly report: count the day's orders by status and mail the summary to the team.
-- The `nightly` schedule in app.yaml starts it at 02:00 every day (a Temporal Schedule that
-- `flowctl apply` keeps in step with the entry); `flowctl schedule trigger app:nightly` runs it now.
local funcs = require("funcs")

local function main(report)
    local counts = {}
    for _, order in ipairs(report.orders or {}) do
        counts[order.status] = (counts[order.status] or 0) + 1
    end
    local lines = {}
    for status, count in pairs(counts) do
        lines[#lines + 1] = status .. ": " .. count
    end
    table.sort(lines)   -- pairs() has no order: sort, so the mail reads the same on every replay
    local body = #lines > 0 and table.concat(lines, ", ") or "no orders"
    funcs.call("app:send_email", {to = report.to, body = "nightly report: " .. body})
    return {to = report.to, orders = #(report.orders or {}), summary = body}
end

return { main = main }
