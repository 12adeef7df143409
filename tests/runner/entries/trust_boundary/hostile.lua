-- Values whose metamethods never return, handed to flowctl's own code (docs/sandbox.md, The
-- trust boundary). Python must never run them: each attempt ends in an error at this file's line.
local function loop() while true do end end
local forever = setmetatable({}, {__tostring = loop, __index = loop, __len = loop, __eq = loop})

local attempts = {
    -- a pid whose id was replaced, through process.unlink (Python used to str() it)
    unlink = function()
        local p = process.self()
        p.id = setmetatable({}, {__tostring = loop})
        process.unlink(p)
    end,
    -- a replaced `type` cannot vouch for a value: the shims captured the real one
    listen = function()
        type = function() return "string" end
        process.listen(forever)
    end,
    on_query = function()
        type = function() return "string" end
        workflow.on_query(forever, function() end)
    end,
    -- a Duration whose nanoseconds loop when divided, returned as the result
    duration = function()
        local d = 5 * time.SECOND
        rawset(d, "ns", setmetatable({}, {__idiv = loop}))
        return {d = d}
    end,
}

local function main(input)
    local ok, result = pcall(attempts[input.attempt])
    if input.attempt == "duration" then return result end   -- the exporter must refuse it
    return {ok = ok, error = tostring(result)}
end

return { main = main }
