-- Fails with the kind it is given; its entry's retry policy lists DECLINED as never retried.
return {main = function(input)
    return nil, errors.new({kind = input.kind, message = "no: " .. input.kind, retryable = input.retryable})
end}
