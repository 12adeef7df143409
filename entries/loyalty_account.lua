-- A customer loyalty account, written as an actor (see reference/000, the Temporal blog post).
--
-- Messages (Temporal signals): add_points {points = n}, invite_guest {guest = "id"}, cancel.
-- Query: status. The account runs until cancelled. Its history grows with every message, so it
-- continues as new (same workflow id, fresh history, state passed as input) after
-- `signals_per_run` messages or once the history reaches `history_limit` events, whichever
-- comes first; messages not yet handled then are carried into the next run.

local TIERS = {
    {name = "platinum", minimum = 5000},
    {name = "gold", minimum = 1000},
    {name = "silver", minimum = 500},
    {name = "member", minimum = 0},
}
local INVITE_MINIMUM_POINTS = 1000
-- Temporal's hard limit is 51,200 events per run; the blog post continues as new at 10,000.
local HISTORY_LIMIT = 10000

local function tier_of(points)
    for _, tier in ipairs(TIERS) do
        if points >= tier.minimum then return tier.name end
    end
end

local function email(customer, body)
    -- A failed email must not stop the account: report it and go on.
    local _, err = funcs.call("app:send_email", {to = customer.id, body = body})
    if err then print("email to " .. customer.id .. " failed: " .. tostring(err)) end
end

local function main(input)
    local customer = input.customer
    local signals_per_run = input.signals_per_run or 1000
    local history_limit = input.history_limit or HISTORY_LIMIT
    customer.points = customer.points or 0
    customer.tier = tier_of(customer.points)
    customer.runs = (customer.runs or 0) + 1

    workflow.on_query("status", function()
        return {points = customer.points, tier = customer.tier, active = customer.active ~= false,
                runs = customer.runs, guests = customer.guests or {}}
    end)

    if input.new_customer then
        email(customer, "Welcome, " .. (customer.name or customer.id) .. ", to our loyalty program!")
    end

    local inbox = process.inbox()
    local handled = 0
    while handled < signals_per_run and workflow.history_length() < history_limit do
        local msg = inbox:receive()
        local data = msg:payload():data() or {}
        handled = handled + 1
        if msg:topic() == "add_points" then
            customer.points = customer.points + (data.points or 0)
            local tier = tier_of(customer.points)
            if tier ~= customer.tier then
                customer.tier = tier
                email(customer, "Congratulations! You are now " .. tier .. ".")
            end
        elseif msg:topic() == "invite_guest" then
            if customer.points >= INVITE_MINIMUM_POINTS then
                customer.guests = customer.guests or {}
                table.insert(customer.guests, data.guest)
                -- The guest's own account: an independent workflow named after the guest.
                process.with_options({["temporal.workflow.parent_close_policy"] = "abandon"})
                    :with_name("loyalty-" .. data.guest)
                    :spawn("app:loyalty_account", "app:worker",
                           {customer = {id = data.guest}, new_customer = true})
            end
        elseif msg:topic() == "cancel" then
            customer.active = false
            email(customer, "Your loyalty account is closed.")
            return {points = customer.points, tier = customer.tier, runs = customer.runs}
        end
    end

    -- Keep the history small: a fresh run with the same state and the same workflow id.
    workflow.continue_as_new({customer = customer, signals_per_run = signals_per_run, history_limit = history_limit})
end

return { main = main }
