// client.test.ts: the typed client against a running bookd (node's test
// runner; tests/integration/test_ts_client.sh starts bookd with
// BOOKD_ADDRESS_RATE=5 and passes BOOKD_URL, BOOKD_SERVICE_KEY and
// BOOKD_ANON_KEY). Creates an org with a series (its events), lists the
// events, books, reads the booking back, cancels it, and checks that a
// full class (409) and the anon key past its rate (429) come back as typed
// errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
	createBookdClient,
	errorCode,
	idempotencyKey,
	type ErrorCode,
	type Event,
} from '../src/index.js';

const baseUrl = process.env.BOOKD_URL ?? '';
const svc = createBookdClient({
	baseUrl,
	token: process.env.BOOKD_SERVICE_KEY,
});
const anon = createBookdClient({ baseUrl, token: process.env.BOOKD_ANON_KEY });

function tomorrow(): string {
	return new Date(Date.now() + 86400e3).toISOString().slice(0, 10);
}

let events: Event[] = [];

test('creates an org, its catalogue and a series; lists its events', async () => {
	assert.ok(baseUrl, 'BOOKD_URL');
	const org = await svc.POST('/v1/orgs', {
		body: { name: 'TS Studio', timezone: 'Europe/Berlin' },
	});
	assert.equal(org.response.status, 201, JSON.stringify(org.error));
	const orgId = org.data!.org!.id!;
	assert.match(org.response.headers.get('Location') ?? '', /^\/v1\/orgs\//);
	const loc = await svc.POST('/v1/locations', {
		body: { org_id: orgId, name: 'Hall' },
	});
	const ins = await svc.POST('/v1/instructors', {
		body: { org_id: orgId, name: 'Sam' },
	});
	assert.ok(loc.data && ins.data);
	const series = await svc.POST('/v1/series', {
		body: {
			org_id: orgId,
			location_id: loc.data.location!.id!,
			instructor_id: ins.data.instructor!.id!,
			title: 'Flow',
			capacity: 1,
			timezone: 'Europe/Berlin',
			weekdays: ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'],
			start_time: '07:00',
			duration_min: 60,
			first_date: tomorrow(),
		},
	});
	assert.equal(series.response.status, 201, JSON.stringify(series.error));
	assert.ok(series.data!.generated > 0);
	const list = await svc.GET('/v1/events', {
		params: { query: { org_id: orgId, limit: 5 } },
	});
	assert.equal(list.response.status, 200, JSON.stringify(list.error));
	events = list.data!.events;
	assert.equal(events.length, 5);
	for (const e of events) {
		assert.equal(e.org_id, orgId);
		assert.equal(e.title, 'Flow');
		assert.equal(e.available, 1);
	}
});

test('books, reads the booking, cancels it', async () => {
	const ev = events[0]!;
	const book = await svc.POST('/v1/events/{event_id}/bookings', {
		params: {
			path: { event_id: ev.id },
			header: { 'Idempotency-Key': idempotencyKey() },
		},
		body: { customer_id: 'cus_ts_1' },
	});
	assert.equal(book.response.status, 201, JSON.stringify(book.error));
	const b = book.data!.booking;
	assert.equal(b.status, 'confirmed');
	assert.equal(b.customer_id, 'cus_ts_1');
	assert.equal(book.response.headers.get('Location'), `/v1/bookings/${b.id}`);

	const read = await svc.GET('/v1/bookings/{booking_id}', {
		params: { path: { booking_id: b.id } },
	});
	assert.equal(read.response.status, 200);
	assert.deepEqual(read.data!.booking, b);

	const cancel = await svc.POST('/v1/bookings/{booking_id}/cancel', {
		params: {
			path: { booking_id: b.id },
			header: { 'Idempotency-Key': idempotencyKey() },
		},
	});
	assert.equal(cancel.response.status, 200, JSON.stringify(cancel.error));
	assert.equal(cancel.data!.booking.status, 'cancelled');
	assert.equal(cancel.data!.promoted, null);
});

test('a full class is a typed 409 event_full', async () => {
	const ev = events[1]!;
	const book = (customer_id: string) =>
		svc.POST('/v1/events/{event_id}/bookings', {
			params: {
				path: { event_id: ev.id },
				header: { 'Idempotency-Key': idempotencyKey() },
			},
			body: { customer_id },
		});
	const first = await book('cus_ts_2');
	assert.equal(first.response.status, 201);
	const second = await book('cus_ts_3');
	assert.equal(second.response.status, 409);
	assert.equal(second.data, undefined);
	const code: ErrorCode | undefined = second.error?.error.code;
	assert.equal(code, 'event_full');
	assert.equal(typeof second.error?.error.message, 'string');
});

test('the anon key past its rate is a typed 429 with Retry-After', async () => {
	let last;
	for (let i = 0; i < 200; i++) {
		last = await anon.GET('/v1/events', {
			params: { query: { limit: 1 } },
		});
		if (last.response.status !== 200)
			break;
	}
	assert.ok(last);
	assert.equal(last.response.status, 429);
	assert.equal(errorCode(last.error), 'rate_limited');
	assert.ok(Number(last.response.headers.get('Retry-After')) >= 1);
	// the service key is not held to the address's limit
	const svcList = await svc.GET('/v1/events', {
		params: { query: { limit: 1 } },
	});
	assert.equal(svcList.response.status, 200);
});
