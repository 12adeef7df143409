-- With input.fail, its workflow task fails (a Lua error at line 5) and the run is stuck.
local function main(input)
    local missing = nil
    if input.fail then
        return missing.field
    end
    return {ok = true}
end
return {main = main}
