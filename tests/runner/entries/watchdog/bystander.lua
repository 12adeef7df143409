-- An unrelated run on the same worker: it sleeps across the worker's restart, then finishes.
local function main(input)
    time.sleep(input.sleep)
    return {done = true}
end

return { main = main }
