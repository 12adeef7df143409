local function main(input)
    activity.heartbeat({progress = 1})
    return {id = 'c-' .. uuid.v4(), amount = input.amount, at = time.now():unix()}
end

return { main = main }
