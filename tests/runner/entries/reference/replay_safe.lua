-- Every replay-safe operation the reference lists (child workflows aside): on replay each one
-- returns the value recorded the first time, so the run takes the same path.
local funcs = require("funcs")
local time = require("time")
local uuid = require("uuid")
local crypto = require("crypto")
local json = require("json")
local workflow = require("workflow")

local function main(id)
    -- Activity calls
    local data = funcs.call("app:fetch_data", id)

    -- Durable sleep
    time.sleep("200ms")

    -- Current time
    local now = time.now()

    -- UUID generation
    local request_id = uuid.v4()

    -- Crypto operations
    local bytes = crypto.random_bytes(32)

    -- Versioning
    local v = workflow.version("change-1", 1, 2)

    -- Branch on the recorded values: replay must take the same branch every time.
    if bytes:byte(1) % 2 == 0 then
        time.sleep("100ms")
    end

    return {
        data = json.decode(json.encode(data)),
        now = now:format_rfc3339(),
        request_id = request_id,
        bytes = #bytes,
        version = v,
    }
end

return { main = main }
