-- Revision A; the test applies a revision B that greets differently after the same timer.
local function main(input)
    time.sleep(input.wait or "1s")
    return {greeting = "hello from A"}
end

return { main = main }
