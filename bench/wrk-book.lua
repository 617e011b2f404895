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
	local events = {}
	for id in string.gmatch(args[1] or "", "%d+") do
		events[#events + 1] = id
	end
	if #events == 0 then
		error("wrk-book.lua: give the event ids: -- ID,ID,... KEY TAG")
	end
	-- Each event's request up to the Idempotency-Key's value, made once:
	-- request() only appends the new customer's name, the length and the
	-- body (what wrk.format would build again, header by header, for
	-- every request: wrk's own CPU, taken from the cores bookd shares).
	heads = {}
	for i, id in ipairs(events) do
		heads[i] = "POST /v1/events/" .. id .. "/bookings HTTP/1.1\r\n" ..
			"Host: " .. wrk.headers["Host"] .. "\r\n" ..
			"Authorization: Bearer " .. (args[2] or "") .. "\r\n" ..
			"Content-Type: application/json\r\n" ..
			"Idempotency-Key: "
	end
	prefix = (args[3] or "wrk") .. "-" .. tid .. "-"
	n = 0
end

function request()
	n = n + 1
	local customer = prefix .. n
	local body = '{"customer_id":"' .. customer .. '"}'
	return heads[n % #heads + 1] .. customer .. "\r\nContent-Length: " ..
		#body .. "\r\n\r\n" .. body
end
