return { main = function() return {tenant = ctx.get("tenant"), all = ctx.all()} end }
