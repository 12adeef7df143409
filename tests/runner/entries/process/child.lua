return { main = function(input) return {echo = input and input.message, n = input and input.n} end }
