-- One step of a job: returns what it was given, tagged with the job's number.
local function main(input)
  return {n = input.n, done = true}
end

return {main = main}
