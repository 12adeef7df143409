return { main = function() return ctx.all() end }
