-- wrk-book.lua: one booking per request for wrk (HTTP/1.1 keep-alive, not
-- pipelined), as bench/request-path.sh measures bookd's HTTP write path:
--   wrk -t2 -c64 -d10s -s bench/wrk-book.lua http://127.0.0.1:8080 -- \
--       EVENT_IDS SERVICE_KEY RUN_TAG
-- EVENT_IDS: comma-separated events made first (with room for every
-- booking, so each answer is a 201 that the log made durable); each request
-- books the next event in turn for a customer of its own (RUN_TAG, the
-- thread and a counter: never seen before, bookd creates it), with that
-- name as its Idempotency-Key. wrk counts what is not 2xx ("Non-2xx or 3xx
-- responses"); request-path.sh refuses the run when there is any.

local thread_count = 0

function setup(thread)
	thread:set("tid", thread_count)
	thread_count = thread_count + 1
end

function init(args)
	events = {}
	for id in string.gmatch(args[1] or "", "%d+") do
		events[#events + 1] = id
	end
	if #events == 0 then
		error("wrk-book.lua: give the event ids: -- ID,ID,... KEY TAG")
	end
	auth = "Bearer " .. (args[2] or "")
	tag = args[3] or "wrk"
	n = 0
end

function request()
	n = n + 1
	local ev = events[n % #events + 1]
	local customer = tag .. "-" .. tid .. "-" .. n
	return wrk.format("POST", "/v1/events/" .. ev .. "/bookings", {
		["Authorization"] = auth,
		["Idempotency-Key"] = customer,
		["Content-Type"] = "application/json",
	}, '{"customer_id":"' .. customer .. '"}')
end
