---@meta errors

---Error values with a kind, a message and whether a retry can help.
---@class errorslib
---@field NOT_FOUND string Kind; never retried.
---@field INVALID string Kind; never retried.
---@field INTERNAL string Kind.
---@field TIMEOUT string Kind.
---@field CANCELED string Kind; never retried.
---@field TERMINATED string Kind; never retried.
---@field LIMIT_EXCEEDED string Kind; never retried.
errors = {}

---A new error: `{kind=, message=, retryable=, details=}`, or a message (kind `INTERNAL`).
---
---Errors: raises on a kind that is not UPPER_SNAKE_CASE or a retryable that is not a boolean
---@param spec ErrorSpec|string
---@return Error err
function errors.new(spec) end

---Whether `err` is an error object (of `kind`).
---@param err any
---@param kind? string
---@return boolean is
function errors.is(err, kind) end

return errors
