"""The Lua modules a workflow sees, one Python module per Lua module.

Each shim is a pair of files: ``time.py``, its Python half (``handlers(run)``: what the
driver does for each command the Lua half yields), and ``time.lua`` beside it, its Lua
half (a chunk receiving the sandbox's shim kit, runner/sandbox/lua/80_shim_kit.lua;
``channel.lua`` alone has no Python half: channels are the driver's). Nothing in here is
reachable from Lua as a Python object: Lua only ever yields plain command tables.
"""
