-- Calls app:flaky and reports what the error it got says about retrying.
return {main = function(input)
    local _, err = funcs.call("app:flaky", input)
    return {kind = err:kind(), retryable = err:retryable()}
end}
