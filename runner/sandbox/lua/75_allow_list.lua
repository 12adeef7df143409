-- The allow-list: everything user code can reach by name, and why each entry is safe. An
-- entry is safe when it cannot reach outside the runtime (no files, processes, clocks, the
-- real globals or `debug`) and does the same on every run and on its replay. Entries marked
-- * are flowctl's own versions, from the earlier files, where Lua's own are not safe.
-- Everything else (debug, io, os.execute/getenv/remove/exit, dofile, loadfile, package,
-- string.dump, math.randomseed without a seed, collectgarbage's real work) does not exist for user code.

local function copy(t, without)
    local c = {}
    for k, v in raw_next, t do
        if not (without and without[k]) then c[k] = v end
    end
    return c
end

-- Libraries are copies, so user code changing them changes only its own tables.
local sb_string = copy(string, {dump = true})          -- functions of their arguments; no dump (bytecode out)
sb_string.format = sb_format                           -- * no %p, no addresses through %s
sb_string.find = pattern_find                          -- * patterns on a counted matcher; plain
sb_string.match = pattern_match                        -- * searches charged by length
sb_string.gmatch = pattern_gmatch                      -- *
sb_string.gsub = pattern_gsub                          -- *
sb_string.rep = sb_rep                                 -- * charged by length; rep("", huge) cannot hang
sb_string.upper, sb_string.lower = sb_upper, sb_lower  -- * charged by length
sb_string.reverse, sb_string.sub = sb_reverse, sb_sub  -- *
local sb_table = copy(table)                           -- functions of the tables they are given
sb_table.sort = sb_sort                                -- * stable, no random pivot
sb_table.move = sb_move                                -- * a long range counts as instructions
sb_table.insert, sb_table.remove = sb_insert, sb_remove  -- * charged by the slots they move, or
sb_table.concat, sb_table.unpack = sb_concat, sb_unpack  -- * run as counted Lua (a __len, __index)
local sb_math = copy(math)                              -- functions of their arguments; random is
                                                       -- seeded from the run (below)
local lua_randomseed = math.randomseed
sb_math.randomseed = function(...)                     -- * only with a seed: reseeds the run's own
    if select("#", ...) == 0 then                      -- generator, the same way on every replay
        caller_error("math.randomseed() without a seed is not allowed in the sandbox (Lua would seed it from "
            .. "the clock); pass a seed, e.g. math.randomseed(42)")
    end
    lua_randomseed(...)                                -- (returns nothing: Lua 5.4.4+ returns the seed)
end
local sb_coroutine = {
    create = sb_create,                                -- * the instruction budget in every coroutine
    resume = sb_resume,                                -- * commands pass through; driver threads refused
    wrap = sb_wrap,                                    -- *
    close = sb_close_checked,                          -- * driver threads refused; re-raises a limit
    yield = coroutine.yield,                           -- cannot forge a command (its sentinel is private)
    status = coroutine.status,                         -- reads a coroutine's state
    isyieldable = coroutine.isyieldable,               -- reads a coroutine's state
    running = coroutine.running,                       -- the current thread; resuming it is refused
}
if config.spawn then
    sb_coroutine.spawn = sb_spawn                      -- * the driver starts it as a workflow thread
end

env.assert = sb_assert                                 -- * raises; cannot forge a limit's message
env.error = sb_error                                   -- * raises; cannot forge a limit's message
env.getmetatable = getmetatable                        -- honours __metatable: flowctl's objects show a name
env.ipairs = ipairs                                    -- 1..n, in order
env.next = sb_next                                     -- * the keys' order, not the hash table's
env.pairs = sb_pairs                                   -- * the keys' order, not the hash table's
env.pcall = sb_pcall                                   -- * cannot swallow a limit error
env.xpcall = sb_xpcall                                 -- * cannot swallow a limit error
env.rawequal = rawequal                                -- compares two values
env.rawget = rawget                                    -- reads a table it is given
env.rawlen = rawlen                                    -- length of a table or string it is given
env.rawset = sb_rawset                                 -- * no late __gc on a metatable in use; __mode kept aside
env.select = sb_select                                 -- * charged by its argument count
env.setmetatable = sb_setmetatable                     -- * no __gc; __mode kept aside (strong entries)
env.tonumber = tonumber                                -- a function of its arguments
env.tostring = sb_tostring                             -- * no addresses
env.type = type                                        -- a function of its argument
env.load = sb_load_checked                             -- * text chunks only, in this environment; a
                                                       -- reader runs as Lua: it cannot swallow a limit
env.require = sb_require                               -- * listed modules and imports only
env.collectgarbage = function() return 0 end           -- * a stub: GC timing is not the program's
env.print = function() end                             -- replaced by the log shim
env._VERSION = _VERSION                                -- a constant string
env.string = sb_string
env.table = sb_table
env.math = sb_math
env.utf8 = copy(utf8)                                  -- functions of the strings they are given
env.utf8.len, env.utf8.offset = sb_utf8_len, sb_utf8_offset                -- * charged by length
env.utf8.codepoint, env.utf8.char = sb_utf8_codepoint, sb_utf8_char        -- *
env.coroutine = sb_coroutine
env.os = sb_os                                         -- * time, clock and date on the driver's clock
env._G = env                                           -- this environment, not the real globals

-- Strings' methods ("x"):upper() use the sandbox's string table, not the real one.
debug.getmetatable("").__index = sb_string
math.randomseed(config.seed)
