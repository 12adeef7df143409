"""The flowctl runner: Temporal worker, Lua sandbox, workflow driver and activities."""
