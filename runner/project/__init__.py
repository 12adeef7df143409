"""Starting and editing a project: the Lua API description, LuaLS stubs, ``flowctl init`` and completion.

Imports no temporalio and no lupa: ``flowctl init``, ``flowctl stubs`` and shell completion start fast.
"""
