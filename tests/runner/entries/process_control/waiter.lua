-- Waits without handling cancellation: the CANCELED error from the blocking call ends the run Canceled.
local function main(input)
    if input.on == "inbox" then
        process.inbox():receive()
    else
        time.sleep("1h")
    end
    return "never"
end

return { main = main }
