-- Metatables: what setmetatable and rawset may do. Finalizers (__gc) run at garbage-collection
-- time, which differs between a run and its replay: they are refused, keeping every effect in
-- program order. Weak tables (__mode) are accepted but hold their entries strongly: setmetatable
-- keeps a metatable's __mode aside (reading mt.__mode still gives it) instead of in the table
-- Lua's collector reads, so no entry ever vanishes at a GC-dependent moment (the memory limit
-- counts them like any other). Lua honours a __gc or __mode added to a metatable in use, so a
-- metatable stays guarded once used, whatever it inherits. And setmetatable keeps chains of
-- __index (__newindex) tables short (65_c_loop_guards.lua says why).
--
-- The rules are built (below the `--- on demand ---` line, 45_on_demand.lua) the first time
-- user code calls setmetatable: flowctl's own objects get theirs from Lua's own setmetatable,
-- and until user code has set a metatable, no metatable is guarded, so rawset is Lua's own.
local debug_setmetatable = debug.setmetatable
local rules

local function built()
    rules = build_part("25_metatables", raw_error, raw_rawget, raw_rawset, raw_rawequal, raw_setmetatable,
        raw_type, raw_next, debug_getmetatable, debug_setmetatable, type_names, caller_error, sformat)
    return rules
end

-- (tail calls: the errors the rules raise at level 2 are at the line that called these)
function sb_setmetatable(t, mt)
    return (rules or built()).setmetatable(t, mt)
end

function sb_rawset(t, key, value)
    if rules ~= nil then return rules.rawset(t, key, value) end
    return raw_rawset(t, key, value)
end

--- on demand ---
-- setmetatable's and rawset's rules (above): what they use comes from the prelude, as arguments.
local raw_error, raw_rawget, raw_rawset, raw_rawequal, raw_setmetatable, raw_type, raw_next, debug_getmetatable,
    debug_setmetatable, type_names, caller_error, sformat = ...

local GC_FIELDS = {
    __gc = "__gc finalizers are not allowed in the sandbox (they run at garbage-collection time, "
        .. "which is not deterministic)",
    __mode = true,          -- accepted, kept aside: weak tables hold their entries strongly (MODES)
    -- (not about garbage collection: a __close method could put another error in the place of
    -- the one that ends a run at a limit; 10_limits.lua)
    __close = "to-be-closed variables (__close) are not allowed in the sandbox (a __close method could "
        .. "replace the error that stops a run at a limit)",
}

-- MODES[mt]: the __mode a metatable was given, kept out of mt itself so that Lua's collector never
-- sees it (weak keys: only looked up through a metatable user code still holds).
local MODES = raw_setmetatable({}, {__mode = "k"})

-- set_field(mt, key, value): rawset on a guarded metatable, a __mode kept aside, a __gc refused
local function set_field(mt, key, value, level)
    if key == "__mode" then
        MODES[mt] = value
    elseif GC_FIELDS[key] then
        raw_error("setmetatable: " .. GC_FIELDS[key], level + 1)
    else
        raw_rawset(mt, key, value)
    end
end

-- A metatable with no metatable of its own gets MT_GUARD, whose __newindex checks new keys.
local MT_GUARD = {__metatable = false}
MT_GUARD.__newindex = function(mt, key, value) set_field(mt, key, value, 2) end
MT_GUARD.__index = function(mt, key)
    if key == "__mode" then return MODES[mt] end
end

-- One that has a metatable of its own (a class that inherits: setmetatable(Derived, {__index =
-- Base})) gets a guard of its own instead: a private metatable with its parent's events as they
-- are when it is first used, whose __index and __newindex follow the parent as it changes, and
-- whose __newindex checks new keys too; getmetatable() still shows the parent.
local PARENT = {}           -- guard[PARENT]: the user's metatable a guard stands in for

local function forward_index(t, k)
    if k == "__mode" and MODES[t] ~= nil then return MODES[t] end
    local h = raw_rawget(raw_rawget(debug_getmetatable(t), PARENT), "__index")
    if raw_type(h) == "function" then return h(t, k) end
    if h ~= nil then return h[k] end
end

local function forward_newindex(t, k, v)
    if GC_FIELDS[k] then
        set_field(t, k, v, 2)       -- (not a tail call: its error is at level 3, the user's line)
        return
    end
    local h = raw_rawget(raw_rawget(debug_getmetatable(t), PARENT), "__newindex")
    if raw_type(h) == "function" then
        h(t, k, v)
    elseif h ~= nil then
        h[k] = v
    else
        raw_rawset(t, k, v)
    end
end

local function is_guarded(t)
    local mt = debug_getmetatable(t)
    return raw_rawequal(mt, MT_GUARD) or (mt ~= nil and raw_rawget(mt, PARENT) ~= nil)
end

-- guard(mt): from now on `mt` refuses a __gc or __mode added later (an error at level 3)
local function guard(mt)
    local parent = debug_getmetatable(mt)
    if parent == nil then
        raw_setmetatable(mt, MT_GUARD)
        return
    end
    if raw_rawequal(parent, MT_GUARD) or raw_rawget(parent, PARENT) ~= nil then return end
    if type_names[parent] then
        raw_error("setmetatable: a " .. type_names[parent] .. " cannot be used as a metatable", 3)
    end
    local g = {}
    for event, handler in raw_next, parent do
        if not GC_FIELDS[event] then g[event] = handler end
    end
    g[PARENT], g.__index, g.__newindex = parent, forward_index, forward_newindex
    if raw_rawget(parent, "__metatable") == nil then g.__metatable = parent end
    debug_setmetatable(mt, g)       -- Lua's own setmetatable refuses a parent with a __metatable
end

-- `t.x` on a table whose metatable's __index is a table with such a metatable too... walks
-- the whole chain in C within one VM instruction (Lua allows 2,000 links): setmetatable
-- keeps every chain of __index (and __newindex) tables it links at most MAX_CHAIN tables
-- long. heights[field][x]: the most links above table x (weak keys: a table nobody can reach
-- is in no chain).
local MAX_CHAIN = 10
local heights = {__index = raw_setmetatable({}, {__mode = "k"}),
                 __newindex = raw_setmetatable({}, {__mode = "k"})}

local function check_chain(t, mt, field)
    local height = heights[field]
    local h, node = (height[t] or 0) + 1, raw_rawget(mt, field)
    while raw_type(node) == "table" do
        if h > MAX_CHAIN then
            caller_error(sformat("setmetatable: this would chain more than %d tables through %s (each lookup "
                .. "walks all of them at once); copy the fields into fewer tables", MAX_CHAIN, field))
        end
        if (height[node] or 0) < h then height[node] = h end
        local node_mt = raw_rawequal(node, t) and mt or debug_getmetatable(node)
        if node_mt == nil then return end
        node, h = raw_rawget(node_mt, field), h + 1
    end
end

-- check_chains(t, mt): refuse setmetatable(t, mt) when it makes a chain too long
local function check_chains(t, mt)
    if raw_type(t) == "table" and raw_type(mt) == "table" then
        check_chain(t, mt, "__index")
        check_chain(t, mt, "__newindex")
    end
end

local function setmetatable(t, mt)
    if raw_type(mt) == "table" then
        for field, why in raw_next, GC_FIELDS do
            if field ~= "__mode" and raw_rawget(mt, field) ~= nil then raw_error("setmetatable: " .. why, 2) end
        end
        check_chains(t, mt)                         -- no long __index chains
        local mode = raw_rawget(mt, "__mode")
        guard(mt)
        if mode ~= nil then         -- after guard: an error there leaves mt as it was
            raw_rawset(mt, "__mode", nil)
            MODES[mt] = mode
        end
    end
    return raw_setmetatable(t, mt)
end

local function rawset(t, key, value)
    if GC_FIELDS[key] and is_guarded(t) then
        if key == "__mode" then
            MODES[t] = value
            return t
        end
        raw_error("rawset: " .. GC_FIELDS[key], 2)
    end
    return raw_rawset(t, key, value)
end

return {setmetatable = setmetatable, rawset = rawset}
