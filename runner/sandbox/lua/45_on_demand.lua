-- Code a runtime loads the first time it needs it (lua/on_demand/): the counted pattern matcher
-- behind string.find, match, gmatch and gsub, and the slow paths of the table functions.
-- runtime.py compiles that folder once per process and hands it over as config.on_demand, a
-- function that returns its bytecode; a run that never needs it does not carry it (~30 KiB
-- of heap).
local on_demand_code = config.on_demand
config.on_demand = nil
local loaded
local ult, raw_select, tinsert, tremove = math.ult, select, table.insert, table.remove

function on_demand()
    if loaded == nil then
        -- what the prelude shares with it: lua/on_demand/00_kit.lua takes them in this order
        loaded = raw_load(on_demand_code(), "=on_demand", "b", {})(
            raw_error, raw_pcall, raw_setmetatable, raw_type, raw_tonumber, raw_tostring, debug_getmetatable,
            pack, unpack, concat, to_integer, mtype, ult, raw_select,
            sbyte, schar, sfind, sformat, sgsub, smatch, ssub, tinsert, tremove,
            charge, budget_left, caller_error, is_fatal, LIMIT_ERROR, sb_tostring, c_call,
            {find = sfind, match = smatch, gmatch = sgmatch, gsub = sgsub})
    end
    return loaded
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
