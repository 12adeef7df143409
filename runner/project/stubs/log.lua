---@meta log

---Structured log lines (always there, like `print`); not repeated on replay.
---@class loglib
log = {}

---A debug line.
---@param message any
---@param fields? table
function log.debug(message, fields) end

---An info line.
---@param message any
---@param fields? table
function log.info(message, fields) end

---A warning line.
---@param message any
---@param fields? table
function log.warn(message, fields) end

---An error line.
---@param message any
---@param fields? table
function log.error(message, fields) end

return log
