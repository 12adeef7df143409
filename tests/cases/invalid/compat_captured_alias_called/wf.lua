local getenv = os.getenv

local function main(input)
    local home = getenv("HOME")
    return home
end

return { main = main }
