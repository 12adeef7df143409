local function main(input)
    return debug.traceback()
end

return { main = main }
