-- flowctl test: the compatibility idioms run in a workflow and in the (real) activity it calls.
local test = require("test")

local INPUT = {numbers = {1, 2, 3, 4, 5, 6}, seed = 42}

local function check(out)
    test.eq(out.classes, 2)                  -- the weak-keyed registry kept both classes
    test.eq({out.is_animal, out.is_dog, out.is_object, out.dog_is_animal}, {true, true, true, true})
    test.eq(out.mode, "k")
    test.eq(out.output, "log")               -- io and io.stdout are nil in the sandbox
    test.eq(out.sum, 21)
    test.eq(#out.shuffled, 6)
end

local function test_the_idioms_run_in_a_workflow_and_an_activity()
    local result, err = test.run("app:wf", INPUT)
    test.eq(err, nil)
    check(result.workflow)
    check(result.activity)
    -- an explicit seed reseeds deterministically: the same order in both sandboxes
    test.eq(result.workflow.shuffled, result.activity.shuffled)
    test.eq(test.commands(), {"activity app:act", "complete"})
end

return {test_the_idioms_run_in_a_workflow_and_an_activity = test_the_idioms_run_in_a_workflow_and_an_activity}
