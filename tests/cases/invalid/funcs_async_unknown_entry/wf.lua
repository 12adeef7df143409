local function main(input)
    local future = funcs.async("app:nope", input)
    return future:result()
end

return { main = main }
