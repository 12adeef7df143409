return {main = function(input) return input end}
