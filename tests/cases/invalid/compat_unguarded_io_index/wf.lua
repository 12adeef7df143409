local stdout = io.stdout

local function main(input)
    return stdout ~= nil
end

return { main = main }
