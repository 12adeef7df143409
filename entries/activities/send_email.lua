-- Stands in for a real mail service: a real project would call it from a function.python entry.
local function main(message)
    print("email to " .. message.to .. ": " .. message.body)
    return {sent = true}
end

return { main = main }
