local function main(input)
    return workflow.exec("app:act", input)
end

return { main = main }
