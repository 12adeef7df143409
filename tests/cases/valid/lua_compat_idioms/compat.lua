-- Portability idioms of ordinary Lua libraries, written for flowctl's tests (docs/sandbox.md,
-- Compatibility): each is guarded or captured, so it validates and runs in the sandbox.
local unpack_raw = rawget(table, "unpack") or unpack     -- Lua 5.1 fallback, never taken here
local unpack = table.unpack or unpack
local stdout = io and io.stdout or nil                   -- nil in the sandbox
local randomseed = math.randomseed                       -- captured; only called with a seed

-- A small class library that keeps every class's parent in a weak-keyed registry.
local parents = setmetatable({}, {__mode = "k"})

local Object = {name = "Object"}
Object.__index = Object

function Object:extend(name)
    local cls = setmetatable({name = name}, {__index = self})
    cls.__index = cls
    parents[cls] = self
    return cls
end

function Object:new(fields)
    return setmetatable(fields or {}, self)
end

function Object:is(cls)
    local c = getmetatable(self)
    while c ~= nil do
        if c == cls then return true end
        c = parents[c]
    end
    return false
end

local function registry_size()
    local n = 0
    for _ in pairs(parents) do n = n + 1 end
    return n
end

local function write(text)
    if io then io.write(text) end                        -- a host with a console
    if type(io) == "table" then return "console" end
    if stdout then stdout:write(text) return "stdout" end
    return "log"
end

local function shuffled(list, seed)
    randomseed(seed)
    local out = {unpack_raw(list)}
    for i = #out, 2, -1 do
        local j = math.random(i)
        out[i], out[j] = out[j], out[i]
    end
    return out
end

local function sum(list)
    local function add(first, ...)
        if first == nil then return 0 end
        return first + add(...)
    end
    return add(unpack(list))
end

-- demo(input): the idioms together, as a workflow or an activity would use them
local function demo(input)
    local Animal = Object:extend("Animal")
    local Dog = Animal:extend("Dog")
    local rex = Dog:new({sound = "woof"})
    for i = 1, 50 do
        local junk = {}
        for k = 1, 200 do junk[k] = {i, k} end           -- garbage: collections run meanwhile
    end
    return {
        classes = registry_size(),
        is_animal = rex:is(Animal), is_dog = rex:is(Dog), is_object = rex:is(Object),
        dog_is_animal = Dog:new():is(Dog) and not Animal:new():is(Dog),
        mode = getmetatable(parents).__mode,
        output = write("hello"),
        sum = sum(input.numbers),
        shuffled = shuffled(input.numbers, input.seed),
    }
end

return {Object = Object, demo = demo, shuffled = shuffled, sum = sum}
