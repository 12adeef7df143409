local function main(input)
    return funcs.call("app:wf", input)
end

return { main = main }
