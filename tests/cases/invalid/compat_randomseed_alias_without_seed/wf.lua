local randomseed = math.randomseed

local function reseed()
    randomseed()
end

local function main(input)
    reseed()
    return 1
end

return { main = main }
