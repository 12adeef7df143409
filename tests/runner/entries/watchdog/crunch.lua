-- A Lua activity: the watchdog records each attempt; a quarantined attempt fails before it runs.
local function main(input)
    return {sum = input.a + input.b}
end

return { main = main }
