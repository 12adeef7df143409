-- Modules: the environment user code runs in, what `require` finds there (the modules the
-- entry lists, the libraries it imports), and `load`, for text chunks only.

-- user code's _G, filled by 75_allow_list.lua
env = {}
local modules = {}         -- name -> module value (listed flowctl modules)
local libraries = {}       -- import alias -> {source = ..., chunkname = ...}
local loaded = {}          -- import alias -> what the library returned
local loading = {}
local owner = "this entry"
local module_names = ""
-- json and errors are built in, but like every module only there when the entry lists them
local builtin = {json = json, errors = errors}

function sb_load(chunk, chunkname, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then
        raw_error("load: only text chunks are allowed in the sandbox (mode must be \"t\")", 2)
    end
    if chunk_env == nil then chunk_env = env end
    return raw_load(chunk, chunkname or "=(load)", "t", chunk_env)
end

function sb_require(name)
    if raw_type(name) ~= "string" then
        raw_error("bad argument #1 to 'require' (string expected, got " .. raw_type(name) .. ")", 2)
    end
    local m = modules[name]
    if m ~= nil then return m end
    local value = loaded[name]
    if value ~= nil then return value end
    local lib = libraries[name]
    if lib == nil then
        raw_error(sformat("module '%s' is not available in %s: list it under `modules:` (available: %s) "
            .. "or import a library.lua entry under `imports:`", name, owner, module_names), 2)
    end
    if loading[name] then raw_error("require: import cycle through '" .. name .. "'", 2) end
    local fn, err = raw_load(lib.source, "@" .. lib.chunkname, "t", env)
    if fn == nil then raw_error(err, 0) end
    loading[name] = true
    local ok, result = raw_pcall(fn, name)
    loading[name] = nil
    if not ok then raw_error(result, 0) end
    if result == nil then result = true end
    loaded[name] = result
    return result
end

-- configure(owner, names): the entry that runs here, and the modules it may list (for require's errors)
function configure(entry_owner, names)
    owner = entry_owner
    module_names = names
end

-- add_module(name, value, as_global): require(name) returns value (nil: the built-in json/errors)
function add_module(name, value, as_global)
    if value == nil then value = builtin[name] end
    if value == nil then raw_error("flowctl: no built-in module " .. raw_tostring(name), 0) end
    modules[name] = value
    if as_global then env[name] = value end
end

-- add_library(alias, source, chunkname): a library.lua entry require(alias) loads, once, lazily
function add_library(alias, source, chunkname)
    libraries[alias] = {source = source, chunkname = chunkname}
end

-- compile(source, chunkname): user code as a function of the sandbox environment, or nil, err
function compile(source, chunkname)
    local fn, err = raw_load(source, chunkname, "t", env)
    return fn, err
end
