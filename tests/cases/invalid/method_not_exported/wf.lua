local function run(input)
    return input
end

return { run = run }
