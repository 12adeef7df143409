-- Runs beside the hostile workflows on the same worker: it must complete.
local function main(input)
    for i = 1, input.rounds do time.sleep(input.wait) end
    return {ok = true}
end

return {main = main}
