return { main = function() return nil, errors.new({kind = "NOT_FOUND", message = "nothing here", retryable = false}) end }
