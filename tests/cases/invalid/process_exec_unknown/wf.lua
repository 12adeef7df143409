local function main(input)
    return process.exec("app:hello_workflow", "app:worker", input)
end

return { main = main }
