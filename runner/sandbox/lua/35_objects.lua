-- flowctl's object types: errors, and the Durations, Times, channels, pids... the shims hand
-- out. Each type has a private metatable: getmetatable() shows user code only the type's
-- name, so nobody can add a __gc to it or swap its methods, and setmetatable() cannot change
-- an object's type. Code recognises an object by that metatable's identity, never by a name:
-- any table can be given a metatable whose __name is "flowctl.Duration", none can get this one.

-- metatable -> type name, for every type this runtime defined
type_names = {}

-- class(name): the methods (what obj:method() finds) and the metatable of a new type. The
-- methods have a table of their own: with `mt.__index = mt`, `obj.__index` would hand user
-- code the metatable itself.
function class(name)
    local methods = {}
    local mt = {__name = name, __metatable = name, __index = methods}
    type_names[mt] = name
    return methods, mt
end
