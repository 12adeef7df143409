local function main(input)
  return {day = input.day}
end

return {main = main}
