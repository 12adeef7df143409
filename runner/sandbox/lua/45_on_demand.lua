-- Code a runtime builds the first time a run needs it, so a run that never needs it does not
-- carry it (docs/performance.md, What is built on demand): the part of any file of flowctl's
-- Lua below its `--- on demand ---` line (this folder's files, the shims), and lua/on_demand/,
-- the counted pattern matcher behind string.find, match, gmatch and gsub with the slow paths
-- of the table functions (~30 KiB of heap). runtime.py compiles each part once per process;
-- config.on_demand is a Python function that returns a part's bytecode, by name, kept here
-- where user code cannot reach it.
local part_code = config.on_demand
config.on_demand = nil
local ult, raw_select, tinsert, tremove = math.ult, select, table.insert, table.remove
local built = {}            -- part name -> what it returned (packed)

local function run_part(name, ...)
    -- a part reaches nothing by name: everything it uses is passed to it (no globals: {})
    return raw_load(part_code(name), "=" .. name, "b", {})(...)
end

-- build_part(name, ...): what part `name` returns when run with `...`: built the first time, the
-- same values after that (later arguments are not looked at). Building is not charged to the
-- budget (unmetered, 10_limits.lua): when it happens must not change what a task is charged.
function build_part(name, ...)
    local results = built[name]
    if results == nil then
        results = pack(unmetered(run_part, name, ...))
        built[name] = results
    end
    return unpack(results, 1, results.n)
end

local library
-- on_demand(): the functions of lua/on_demand/ (the matcher, the table functions' slow paths)
function on_demand()
    if library == nil then
        -- what the prelude shares with it: lua/on_demand/00_kit.lua takes them in this order
        library = build_part("on_demand",
            raw_error, raw_pcall, raw_setmetatable, raw_type, raw_tonumber, raw_tostring, debug_getmetatable,
            pack, unpack, concat, to_integer, mtype, ult, raw_select,
            sbyte, schar, sfind, sformat, sgsub, smatch, ssub, tinsert, tremove,
            charge, budget_left, caller_error, is_fatal, LIMIT_ERROR, sb_tostring, c_call,
            {find = sfind, match = smatch, gmatch = sgmatch, gsub = sgsub})
    end
    return library
end

-- (tail calls: an error the matcher raises is at the line that called these)
local function later(name)
    return function(...) return on_demand()[name](...) end
end
pattern_match, pattern_gmatch, pattern_gsub = later("match"), later("gmatch"), later("gsub")

-- The most common search, a plain one (s:find(",", 1, true), or a pattern without special
-- characters) in a string of up to 4 KiB, needs no matcher: C's memchr and memcmp, charged
-- for their worst case (about one instruction per position).
local SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]"
local find_later = later("find")
function pattern_find(s, p, init, plain)
    if raw_type(s) == "string" and raw_type(p) == "string" and #s <= 4096 and (init == nil or mtype(init) == "integer")
            and (plain or not sfind(p, SPECIALS)) then
        charge(#s * (1 + #p // 64))
        return sfind(s, p, init, true)
    end
    return find_later(s, p, init, plain)
end
