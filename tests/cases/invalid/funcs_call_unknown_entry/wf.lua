local function main(input)
    return funcs.call("app:charge_paymnet", input)
end

return { main = main }
