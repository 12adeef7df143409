-- no `modules:` key: an activity gets every activity module
local function main(input)
    return {id = uuid.v4(), body = json.encode(input), at = time.now():unix()}
end

return { main = main }
