-- A child workflow: echoes its input.
return {main = function(input) return {echo = input.n} end}
