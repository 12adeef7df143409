-- Waits without handling cancellation: the CANCELED error from the blocking call ends the run Canceled.
local function main(input)
    if input.on == "inbox" then
        process.inbox():receive()
    elseif input.on == "stubborn" then
        -- notices the cancellation and keeps waiting anyway (the canceller's deadline ends it)
        local ok, err = pcall(time.sleep, "1h")
        if not ok and err:kind() == "CANCELED" then time.sleep("1h") end
    else
        time.sleep("1h")
    end
    return "never"
end

return { main = main }
