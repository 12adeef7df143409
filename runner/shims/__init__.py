"""The Lua modules a workflow sees, one Python module per Lua module.

Each shim module holds its Lua half (``LUA_SOURCE``: a chunk receiving the sandbox's
``yield_command``) and its Python half (``handlers(run)``: what the driver does for
each command that Lua half yields). Nothing in here is reachable from Lua as a Python
object: Lua only ever yields plain command tables.
"""
