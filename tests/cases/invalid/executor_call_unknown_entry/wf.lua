local function main(input)
    local executor = funcs.new():with_options({["activity.start_to_close_timeout"] = "5s"})
    return executor:call("app:missing", input)
end

return { main = main }
