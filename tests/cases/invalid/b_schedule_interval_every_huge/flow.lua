local function main(x) return x end
return { main = main }
