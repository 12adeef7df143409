-- A first workflow task that completes, then a second one that never returns: with
-- FLOWCTL_TEST_WATCHDOG_STALL=watchdog:stalls the print below blocks in C holding the GIL
-- (a stand-in for a C function that never returns; nothing in the worker process runs meanwhile).
local function main()
    time.sleep("200ms")
    print("calling into C")
    return "unreachable"
end

return { main = main }
