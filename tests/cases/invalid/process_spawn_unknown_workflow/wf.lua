local function main(input)
    return process.spawn("app:child", "app:worker", input)
end

return { main = main }
