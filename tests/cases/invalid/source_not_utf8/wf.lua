return { main = function() return 'ÿ' end }
