local function main(input)
    local spawner = process
        .with_options({})
        :with_name("order-" .. input.id)
    return spawner:spawn_monitored("app:act", "app:worker", input)
end

return { main = main }
