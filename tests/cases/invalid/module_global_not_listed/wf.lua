local function main(input)
    return process.spawn("app:wf", "app:worker", input)
end

return { main = main }
