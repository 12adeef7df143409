local function main(input)
    return process.spawn("app:wf", "app:client", input)
end

return { main = main }
