-- The Lua half of the `activity` module (its Python half: activity_modules.py): heartbeats,
-- info and cancellation of the running attempt.
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

return M
