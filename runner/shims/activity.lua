-- The Lua half of the `activity` module (its Python half: activity_modules.py): heartbeats,
-- info, cancellation and async completion (pending) of the running attempt.
local kit = ...
local call = kit.call
local M = {}

-- activity.heartbeat(details): tell Temporal the attempt is alive; details come back
-- as activity.info().heartbeat_details on the next attempt (resume where you stopped).
function M.heartbeat(details)
    call({op = "activity.heartbeat", details = details, has_details = details ~= nil})
end

function M.info() return call({op = "activity.info"}) end
function M.is_cancelled() return call({op = "activity.is_cancelled"}) end

-- return activity.pending(): leave the activity open, to be completed, failed or heartbeated
-- from outside by activity.info().task_token (flowctl activity complete|fail|heartbeat).
function M.pending() return call({op = "activity.pending"}) end

return M
