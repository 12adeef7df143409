local function main(input)
    return "c:\temp\new\qfile"
end

return { main = main }
