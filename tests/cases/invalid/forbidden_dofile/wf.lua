local function main(input)
    return dofile("helpers.lua")
end

return { main = main }
