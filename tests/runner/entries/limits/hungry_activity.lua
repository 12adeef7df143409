return { main = function() return #string.rep("y", 1 << 30) end }
