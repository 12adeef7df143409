-- Code a runtime loads the first time it needs it (lua/45_on_demand.lua): the counted pattern
-- matcher behind string.find, match, gmatch and gsub, and the slow paths of the table
-- functions. runner/sandbox/runtime.py compiles this folder like the prelude: this file first,
-- then every other file as a `do ... end` block of its own; the chunk returns the functions
-- (runtime.py names them).
--
-- What the prelude shares arrives as the chunk's arguments, in this order; below them, the
-- names one file of this folder defines for the others.
local raw_error, raw_pcall, raw_setmetatable, raw_type, raw_tonumber, raw_tostring, debug_getmetatable,
    pack, unpack, concat, to_integer, mtype, ult, raw_select,
    sbyte, schar, sfind, sformat, sgsub, smatch, ssub, tinsert, tremove,
    charge, budget_left, caller_error, is_fatal, LIMIT_ERROR, sb_tostring, c_call,
    c_string = ...          -- Lua's C string functions, for their argument errors (30_patterns.lua)

-- 10_compile.lua: patterns as lists of items
local compile_pattern
-- 20_match.lua: the matcher, and the captures of the last match
local PATTERN_ERROR, new_match, match_at, search_match, capture
-- 30_patterns.lua: string.find, match, gmatch and gsub
local pattern_find, pattern_match, pattern_gmatch, pattern_gsub
-- 40_library.lua: load's reader; table.insert, remove and concat when C cannot be trusted
-- with them, long moves
local read_chunk, table_insert, table_remove, table_concat, table_move_long
