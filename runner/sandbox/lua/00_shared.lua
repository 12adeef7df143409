-- The trusted half of flowctl's Lua sandbox: the prelude, first file.
--
-- runner/sandbox/runtime.py runs the files of this folder once per runtime, in name order,
-- as one chunk, before any user code, in the runtime's real globals: this file first, then
-- every other file as a `do ... end` block of its own, so a file's locals are its own. What
-- files share is declared here, and only here: the builtins, captured before user code could
-- replace anything (the prelude calls these at run time, never a global looked up by name),
-- and below them every name one file defines for others, with the file that sets it. No
-- file sets a name another file owns. User code never sees any of these, the real globals
-- nor `debug`: it runs in the environment 75_allow_list.lua builds, and Python talks to the
-- runtime through `control` (90_control.lua), which the chunk returns.
local config = ...          -- {seed = ..., spawn = ...} from LuaSandbox

-- The builtins, as they were before any user code ran.
local raw_yield, raw_resume, raw_status = coroutine.yield, coroutine.resume, coroutine.status
local raw_create, raw_close = coroutine.create, coroutine.close
local raw_pcall, raw_xpcall, raw_error, raw_load, raw_assert = pcall, xpcall, error, load, assert
local raw_next, raw_type, raw_tostring, raw_tonumber, raw_ipairs = next, type, tostring, tonumber, ipairs
local raw_rawget, raw_rawset, raw_rawequal = rawget, rawset, rawequal
local raw_setmetatable = setmetatable
local debug_getmetatable, sethook, getinfo, traceback = debug.getmetatable, debug.sethook, debug.getinfo,
    debug.traceback
local pack, unpack, concat, table_move = table.pack, table.unpack, table.concat, table.move
local sfind, sformat, sgsub, ssub, sbyte, smatch, srep = string.find, string.format, string.gsub, string.sub,
    string.byte, string.match, string.rep
local sgmatch, schar = string.gmatch, string.char
local mtype, mfloor, mhuge, to_integer, maxinteger = math.type, math.floor, math.huge, math.tointeger,
    math.maxinteger
local utf8_len, utf8_char = utf8.len, utf8.char
local os_date = os.date

-- 10_limits.lua: the instruction budget, and what ends a run at a limit
local LIMIT_ERROR, is_fatal, install_hook, begin_task, sb_pcall, sb_xpcall
local limit_hit             -- {name, where} once a limit was exceeded: the run is over
local frame_where, user_where
local charge, budget_left, rethrow, caller_error, sb_error, sb_assert, sb_close_checked, sb_load_checked
local unmetered
-- 20_determinism.lua: the same program does the same on every run and replay
local sb_tostring, plain_text, sorted_keys, sb_next, sb_pairs, sb_sort, sb_format
-- 25_metatables.lua: no __gc, not even added later to a metatable in use; __mode kept aside (strong entries)
local sb_setmetatable, sb_rawset
-- 30_coroutines.lua: commands, and coroutines that pass them up to the driver
local CMD, yield_command, driver_owned, sb_create, sb_resume, sb_close, sb_wrap, sb_spawn
-- 35_objects.lua: flowctl's object types, with private metatables
local type_names, class
-- 40_errors.lua: error objects
local new_error, errors, error_text, error_fields
-- 50_json_encode.lua and 55_json_decode.lua: values crossing to Python
local NULL, ARRAY_MT, OBJECT_MT, ValueError, encode, protect, export
local json, import
-- 60_os.lua: time from the driver's clock
local set_now, sb_os
-- 45_on_demand.lua: code built when first needed: any part of flowctl's Lua below a
-- `--- on demand ---` line, and lua/on_demand/ (Lua patterns on a matcher the budget counts,
-- the table functions' slow paths)
local build_part, on_demand, pattern_find, pattern_match, pattern_gmatch, pattern_gsub
-- 65_c_loop_guards.lua: C work charged to the budget, C loops run as counted Lua
local c_call, sb_rep, sb_upper, sb_lower, sb_reverse, sb_sub
local sb_insert, sb_remove, sb_concat, sb_unpack, sb_move
local sb_utf8_len, sb_utf8_offset, sb_utf8_codepoint, sb_utf8_char, sb_select
-- 70_modules.lua: the environment, require and load
local env, sb_load, sb_require, configure, add_module, add_library, compile
-- 80_shim_kit.lua: what flowctl's shim chunks receive
local kit
-- 90_control.lua: the runtime's API for Python
local control
