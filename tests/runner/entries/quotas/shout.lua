-- An activity whose error message is 6 MB; its entry cuts error texts to 4 KiB.
local function main()
    error(string.rep("x", 6e6))
end

return {main = main}
