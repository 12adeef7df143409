local util = require("util")
return { main = function(x) return util.run(x) end }
