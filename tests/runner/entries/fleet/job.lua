-- A job: one activity, an optional pause, one child; says which revision ran it.
local VERSION = "v1"

local function main(input)
  local step, err = funcs.call("fleet:step", {n = input.n})
  if err then
    return nil, err
  end
  if input.sleep then
    time.sleep(input.sleep)
  end
  local child, cerr = workflow.exec("fleet:child", {n = input.n})
  if cerr then
    return nil, cerr
  end
  return {n = step.n, child = child.echo, version = VERSION}
end

return {main = main}
