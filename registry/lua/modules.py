"""What Lua code may use: flowctl modules per entry kind, the sandbox's base globals, forbidden names.

Kept in one table so the lint, the schemas' enums and docs/diagnostics.md agree.
"""

from __future__ import annotations

#: Modules a workflow.lua entry may list (docs/lua-api.md).
WORKFLOW_MODULES = frozenset(
    {"funcs", "time", "uuid", "crypto", "json", "workflow", "process", "channel", "ctx", "errors"})
#: Modules a function.lua activity may list (docs/lua-api.md).
ACTIVITY_MODULES = frozenset({"json", "time", "uuid", "crypto", "ctx", "errors", "activity"})
ALL_MODULES = WORKFLOW_MODULES | ACTIVITY_MODULES

#: Globals the sandbox provides to every chunk (docs/sandbox.md): the Lua base library minus the
#: file-loading functions, and the safe standard libraries.
BASE_GLOBALS = frozenset({
    "_G", "_VERSION", "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type",
    "xpcall", "load", "require", "collectgarbage", "string", "table", "math", "utf8", "coroutine", "os",
})

#: Globals that do not exist in the sandbox: calling or indexing them fails at run time (error FC403);
#: reading them unguarded gives nil (warning FC410).
FORBIDDEN_GLOBALS = {
    "io": "there is no file or console I/O in the sandbox; do I/O in a function.python activity",
    "debug": "the debug library is not available in the sandbox",
    "package": "the package library is not available; list modules in `modules` and libraries in `imports`",
    "dofile": "files cannot be loaded; put shared code in a library.lua entry and import it",
    "loadfile": "files cannot be loaded; put shared code in a library.lua entry and import it",
    "loadstring": "loadstring is Lua 5.1; the sandbox's load() accepts text chunks only",
    "setfenv": "setfenv is Lua 5.1 and does not exist in Lua 5.4",
    "getfenv": "getfenv is Lua 5.1 and does not exist in Lua 5.4",
    "unpack": "unpack is Lua 5.1; use table.unpack",
}

#: Fields of ``os`` the sandbox keeps (shimmed); any other ``os.*`` does not exist (FC403).
OS_SHIMS = frozenset({"time", "clock", "date"})
#: Other standard-library fields that are removed from the sandbox.
FORBIDDEN_FIELDS = {
    ("string", "dump"): "string.dump is removed: binary chunks are not allowed",
}

#: Kinds of entry a literal call target must have, by API function (lint FC407/FC408).
ACTIVITY_KINDS = ("function.lua", "function.python")
WORKFLOW_KINDS = ("workflow.lua",)
