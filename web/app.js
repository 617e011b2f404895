/*
 * app.js: the schedule page (index.html), plain JavaScript, no library.
 *
 * Credentials: the page is opened with its credentials in the URL fragment
 * (never sent to a server, so never in a log): "#key=<anon key>" to see the
 * schedule, "&token=<customer JWT>" to book as that customer (bookd
 * --demo prints both links), "&org=<id>" for one studio (default: the
 * first). They are kept in localStorage and the fragment is cleared; "Sign
 * out" forgets the token. A key or token can also be pasted into the form.
 *
 * Calls (bookd's HTTP API, same origin only, docs/http.md):
 *   GET /v1/orgs, /v1/orgs/{id}                 the studio and its zone
 *   GET /v1/locations, /v1/instructors          names, once
 *   GET /v1/events?org_id&from&to               every POLL_MS, with
 *       If-None-Match: the last ETag (304: nothing changed, nothing drawn)
 *   GET /v1/customers/{sub}/bookings            signed in: every POLL_MS
 *   POST /v1/events/{id}/bookings               Book / Join the waitlist
 *   POST /v1/bookings/{id}/cancel               Cancel / Leave the waitlist
 * Each POST carries a fresh Idempotency-Key, kept for that button's press
 * so that a retry after a lost answer is a replay, not a second booking.
 *
 * Drawing: one card per event, made once and updated in place (keyed by
 * event id), so that focus stays on a button while seats change under it.
 * Messages go to two live regions: #status (polite: updates, waitlist
 * moves) and #alert (assertive: refusals, offline).
 */
'use strict';

const POLL_MS = 2000;
const DAY_MS = 86400000;
const store = window.localStorage;

const state = {
	key: store.getItem('bookd.key') || '',
	token: store.getItem('bookd.token') || '',
	orgId: store.getItem('bookd.org') || '',
	org: null,
	names: { location: new Map(), instructor: new Map() },
	weekOffset: 0,
	events: [],
	eventsTag: '',
	mine: new Map(), /* event id -> the customer's active booking */
	cards: new Map(), /* event id -> its card's elements */
	busy: new Set(), /* event ids with a request in flight */
	pending: new Map(), /* event id -> { key, action } of a press */
	timer: 0,
	ticking: false,
	again: false,
	offline: false,
	retryUntil: 0,
};

const $ = (id) => document.getElementById(id);

/* ---- credentials ---- */

function takeFragment() {
	const h = window.location.hash.replace(/^#/, '');
	if (!h)
		return;
	const p = new URLSearchParams(h);
	if (p.get('key') !== null)
		state.key = p.get('key');
	if (p.get('token') !== null)
		state.token = p.get('token');
	if (p.get('org') !== null)
		state.orgId = p.get('org');
	store.setItem('bookd.key', state.key);
	store.setItem('bookd.token', state.token);
	store.setItem('bookd.org', state.orgId);
	/* the credentials leave the address bar and the history */
	history.replaceState(null, '', window.location.pathname);
}

/* A JWT's claims (not checked here: bookd checks the signature). */
function claims(token) {
	try {
		const part = token.split('.')[1];
		const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
		return JSON.parse(json);
	} catch (e) {
		return null;
	}
}

function customer() {
	const c = state.token ? claims(state.token) : null;
	return c && typeof c.sub === 'string' ? c.sub : '';
}

function readCredential() {
	return state.key || state.token;
}

function signOut() {
	state.token = '';
	store.setItem('bookd.token', '');
	state.mine.clear();
	drawWho();
	drawAll();
	say('Signed out. Open your sign-in link to book again.');
}

/* ---- calls ---- */

class ApiError extends Error {
	constructor(status, code, message, retryAfter) {
		super(message);
		this.status = status;
		this.code = code;
		this.retryAfter = retryAfter;
	}
}

async function api(method, path, opts = {}) {
	const headers = { Authorization: 'Bearer ' + (opts.bearer || readCredential()) };
	if (opts.tag)
		headers['If-None-Match'] = opts.tag;
	if (opts.idem)
		headers['Idempotency-Key'] = opts.idem;
	if (opts.body !== undefined)
		headers['Content-Type'] = 'application/json';
	let res;
	try {
		res = await fetch(path, {
			method,
			headers,
			cache: 'no-store',
			credentials: 'omit',
			body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
		});
	} catch (e) {
		throw new ApiError(0, 'offline', 'offline');
	}
	setOffline(false);
	if (res.status === 304)
		return { status: 304, tag: opts.tag, body: null };
	let body = null;
	try {
		body = await res.json();
	} catch (e) {
		body = null;
	}
	if (!res.ok) {
		const err = body && body.error ? body.error : {};
		throw new ApiError(res.status, err.code || 'http_' + res.status,
				   err.message || res.statusText,
				   Number(res.headers.get('Retry-After') || 0));
	}
	return { status: res.status, tag: res.headers.get('ETag') || '', body };
}

async function listAll(path, field) {
	const out = [];
	let cursor = '';
	for (let page = 0; page < 20; page++) {
		const sep = path.includes('?') ? '&' : '?';
		const r = await api('GET', path + sep + 'limit=500' +
				    (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
		out.push(...r.body[field]);
		cursor = r.body.next_cursor;
		if (!cursor)
			break;
	}
	return out;
}

/* ---- time in the studio's zone ---- */

function zone() {
	return state.org && state.org.timezone ? state.org.timezone : 'UTC';
}

/* The zone's offset from UTC at t (ms): its wall clock minus t. */
function offsetAt(t) {
	const f = new Intl.DateTimeFormat('en-US', {
		timeZone: zone(), hourCycle: 'h23', year: 'numeric', month: 'numeric',
		day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
	});
	const p = {};
	for (const x of f.formatToParts(new Date(t)))
		p[x.type] = Number(x.value);
	const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
	return wall - Math.floor(t / 1000) * 1000;
}

/* Midnight in the zone of the day t falls on, days later. */
function midnight(t, days) {
	const wall = t + offsetAt(t);
	const d = new Date(wall);
	const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + days);
	return day - offsetAt(day - offsetAt(day));
}

function fmt(t, opts) {
	return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: zone() }, opts))
		.format(new Date(t));
}

function week() {
	const from = midnight(Date.now(), 7 * state.weekOffset);
	return { from, to: midnight(from, 7) };
}

/* ---- messages ---- */

function say(text) {
	$('status').textContent = text;
}

function alarm(text, info) {
	const a = $('alert');
	a.textContent = text;
	a.className = info ? 'alert info' : 'alert';
	a.hidden = !text;
}

function setOffline(off) {
	if (off === state.offline)
		return;
	state.offline = off;
	if (off)
		alarm('You are offline. The seats shown may be out of date; ' +
		      'the page keeps trying and updates when the connection is back.');
	else {
		alarm('');
		say('Back online.');
	}
}

function explain(e, what) {
	if (e.status === 0) {
		setOffline(true);
		return;
	}
	const msg = {
		event_full: 'This class is full and its waitlist is full too.',
		already_booked: 'You already have a booking for this class.',
		event_started: 'This class has already started.',
		event_not_bookable: 'This class cannot be booked (it was cancelled).',
		booking_not_active: 'That booking is no longer active.',
		token_expired: 'Your sign-in has expired: open a new sign-in link.',
		unauthorized: 'This page\'s key or sign-in is not accepted: ' +
			'open the link the studio gave you.',
		forbidden: 'Sign in to book: open your sign-in link.',
	}[e.code];
	if (e.status === 429) {
		const s = Math.max(1, e.retryAfter || 1);
		state.retryUntil = Date.now() + s * 1000;
		alarm('Too many requests: please wait ' + s + ' second' +
		      (s === 1 ? '' : 's') + ' and try again.');
		return;
	}
	alarm((what ? what + ': ' : '') + (msg || e.message || 'something went wrong'));
}

/* ---- loading ---- */

async function loadStudio() {
	const orgs = await listAll('/v1/orgs', 'orgs');
	if (!orgs.length)
		throw new ApiError(404, 'not_found', 'this server has no studio yet');
	state.org = orgs.find((o) => String(o.id) === String(state.orgId)) || orgs[0];
	const q = '?org_id=' + encodeURIComponent(state.org.id);
	const [locs, ins] = await Promise.all([
		listAll('/v1/locations' + q, 'locations'),
		listAll('/v1/instructors' + q, 'instructors'),
	]);
	for (const l of locs)
		state.names.location.set(String(l.id), l.name);
	for (const i of ins)
		state.names.instructor.set(String(i.id), i.name);
	$('studio').textContent = state.org.name;
	document.title = state.org.name + ': class schedule';
	$('zone').textContent = 'Times are in the studio\'s time zone, ' + zone() + '.';
}

async function pollEvents() {
	const w = week();
	const path = '/v1/events?org_id=' + encodeURIComponent(state.org.id) +
		'&from=' + new Date(w.from).toISOString() +
		'&to=' + new Date(w.to).toISOString() + '&limit=500';
	const r = await api('GET', path, { tag: state.eventsTag });
	if (r.status === 304)
		return false;
	state.eventsTag = r.tag;
	state.events = r.body.events.map((e) =>
		Object.assign(e, { startMs: Date.parse(e.start_at) }));
	return true;
}

const ACTIVE = new Set(['confirmed', 'pending_payment', 'waitlisted']);

async function pollMine() {
	const sub = customer();
	if (!sub) {
		state.mine.clear();
		return;
	}
	const r = await api('GET', '/v1/customers/' + encodeURIComponent(sub) +
			    '/bookings?limit=500', { bearer: state.token });
	const next = new Map();
	for (const b of r.body.bookings)
		if (ACTIVE.has(b.status) && !next.has(String(b.event_id)))
			next.set(String(b.event_id), b);
	for (const [id, b] of next) {
		const old = state.mine.get(id);
		const ev = state.events.find((e) => String(e.id) === id);
		const title = ev ? ev.title : 'a class';
		if (old && old.status === 'waitlisted' && b.status !== 'waitlisted')
			say('Good news: you got a seat in ' + title + '.');
		else if (old && b.status === 'waitlisted' && old.position !== b.position)
			say('You are now number ' + b.position + ' on the waitlist for ' +
			    title + '.');
	}
	state.mine = next;
}

/* One poll at a time: a tick asked for while one runs runs right after. */
async function tick() {
	clearTimeout(state.timer);
	if (state.ticking) {
		state.again = true;
		return;
	}
	state.ticking = true;
	try {
		if (Date.now() >= state.retryUntil) {
			await pollEvents(); /* 304: the same events */
			await pollMine();
			drawAll(); /* the bookings, or the time, may have moved */
			if (!state.offline && $('alert').className === 'alert' &&
			    /^(Updating|Too many)/.test($('alert').textContent))
				alarm('');
			$('updated').textContent = 'Seats updated ' +
				new Date().toLocaleTimeString() + '.';
		}
	} catch (e) {
		explain(e, 'Updating the schedule');
	} finally {
		state.ticking = false;
	}
	if (state.again) {
		state.again = false;
		return tick();
	}
	state.timer = setTimeout(tick, POLL_MS);
}

/* ---- drawing ---- */

function drawWho() {
	const who = $('who');
	who.textContent = '';
	const sub = customer();
	const p = document.createElement('p');
	p.className = 'muted';
	if (sub) {
		p.textContent = 'Signed in as ' + sub + '.';
		const b = document.createElement('button');
		b.type = 'button';
		b.className = 'secondary';
		b.id = 'signout';
		b.textContent = 'Sign out';
		b.addEventListener('click', signOut);
		who.append(p, b);
	} else {
		p.textContent = 'Not signed in: open your sign-in link to book.';
		who.append(p);
	}
}

function el(tag, cls, text) {
	const e = document.createElement(tag);
	if (cls)
		e.className = cls;
	if (text !== undefined)
		e.textContent = text;
	return e;
}

function makeCard(ev) {
	const li = el('li', 'class');
	li.dataset.eventId = ev.id;
	const title = el('h4');
	const when = el('p', 'meta when');
	const where = el('p', 'meta where');
	const seats = el('p', 'seats');
	const mine = el('p', 'mine');
	const actions = el('div', 'actions');
	const act = el('button', 'act');
	act.type = 'button';
	act.addEventListener('click', () => press(String(ev.id)));
	actions.append(act);
	li.append(title, when, where, seats, mine, actions);
	const card = { li, title, when, where, seats, mine, act, avail: null };
	state.cards.set(String(ev.id), card);
	return card;
}

/* What the button offers for an event: [action, label] or [null, text]. */
function offer(ev, b, now) {
	if (ev.status === 'cancelled')
		return [null, 'Cancelled'];
	if (ev.startMs <= now)
		return [null, 'Started'];
	if (b && b.status === 'waitlisted')
		return ['cancel', 'Leave the waitlist'];
	if (b)
		return ['cancel', 'Cancel my booking'];
	if (ev.available > 0)
		return ['book', 'Book'];
	if (ev.waitlist_length < (ev.waitlist_capacity || 0))
		return ['book', 'Join the waitlist'];
	return [null, 'Full'];
}

function updateCard(card, ev, now) {
	const id = String(ev.id);
	const start = ev.startMs;
	const end = start + ev.duration_min * 60000;
	const b = state.mine.get(id);
	const time = fmt(start, { hour: '2-digit', minute: '2-digit' }) +
		'–' + fmt(end, { hour: '2-digit', minute: '2-digit' });
	const when = fmt(start, { weekday: 'long', day: 'numeric', month: 'long' }) +
		', ' + time;
	card.title.textContent = ev.title;
	card.when.textContent = time;
	const where = [];
	const ins = state.names.instructor.get(String(ev.instructor_id));
	const loc = state.names.location.get(String(ev.location_id));
	if (ins)
		where.push('with ' + ins);
	if (loc)
		where.push('at ' + loc);
	if (ev.price_cents)
		where.push((ev.price_cents / 100).toFixed(2) + ' ' +
			   String(ev.currency || '').toUpperCase());
	card.where.textContent = where.join(', ');
	let seats = ev.available > 0
		? ev.available + ' of ' + ev.capacity + (ev.available === 1 ? ' seat left' : ' seats left')
		: 'Full';
	if (ev.waitlist_length > 0 || ev.available === 0)
		seats += ', waitlist: ' + ev.waitlist_length +
			(ev.waitlist_capacity ? ' of ' + ev.waitlist_capacity : '');
	if (card.avail !== null && card.avail !== ev.available) {
		card.seats.classList.remove('changed');
		void card.seats.offsetWidth; /* restarts the flash */
		card.seats.classList.add('changed');
	}
	card.avail = ev.available;
	card.seats.textContent = seats;
	card.seats.dataset.available = ev.available;
	card.seats.dataset.waitlist = ev.waitlist_length;
	card.seats.className = 'seats' + (ev.available > 0 ? '' : ' none') +
		(card.seats.classList.contains('changed') ? ' changed' : '');
	if (b && b.status === 'waitlisted')
		card.mine.textContent = 'You are number ' + b.position + ' on the waitlist.';
	else if (b && b.status === 'pending_payment')
		card.mine.textContent = 'Seat held: payment pending.';
	else if (b)
		card.mine.textContent = 'You are booked.';
	else
		card.mine.textContent = '';
	card.mine.className = 'mine' + (b && b.status !== 'confirmed' ? ' waiting' : '');
	card.mine.hidden = !b;
	card.li.dataset.mine = b ? b.status : '';
	const [action, label] = offer(ev, b, now);
	const signedIn = !!customer();
	card.act.textContent = label;
	card.act.dataset.action = action || '';
	/* busy: aria-disabled, not disabled, so that the focus stays on it */
	card.act.disabled = !action || (!signedIn && action === 'book');
	card.act.setAttribute('aria-disabled', state.busy.has(id) ? 'true' : 'false');
	card.act.setAttribute('aria-label', label + ': ' + ev.title + ', ' + when);
	card.act.title = !signedIn && action === 'book' ? 'Sign in to book' : '';
	card.li.classList.toggle('full', ev.available === 0);
	card.li.classList.toggle('past', start <= now);
	card.li.classList.toggle('cancelled', ev.status === 'cancelled');
}

function drawAll() {
	const sched = $('schedule');
	const w = week();
	const now = Date.now();
	$('week').textContent = state.weekOffset === 0 ? 'This week' :
		fmt(w.from, { day: 'numeric', month: 'short' }) + ' – ' +
		fmt(w.to - 1, { day: 'numeric', month: 'short' });
	$('weeknav').hidden = false;
	$('prev').disabled = state.weekOffset <= 0;
	const days = new Map();
	for (const ev of state.events) {
		const day = fmt(ev.startMs, { weekday: 'long', day: 'numeric', month: 'long' });
		if (!days.has(day))
			days.set(day, []);
		days.get(day).push(ev);
	}
	/* sections and lists are kept by their day; cards by their event */
	const keep = new Set();
	let prev = null;
	for (const [day, evs] of days) {
		let sec = sched.querySelector('section[data-day="' + CSS.escape(day) + '"]');
		if (!sec) {
			sec = el('section');
			sec.dataset.day = day;
			sec.append(el('h3', '', day), el('ul', 'day'));
		}
		const ul = sec.querySelector('ul');
		if (prev ? prev.nextSibling !== sec : sched.firstChild !== sec)
			sched.insertBefore(sec, prev ? prev.nextSibling : sched.firstChild);
		let prevLi = null;
		for (const ev of evs) {
			const card = state.cards.get(String(ev.id)) || makeCard(ev);
			updateCard(card, ev, now);
			if (prevLi ? prevLi.nextSibling !== card.li : ul.firstChild !== card.li)
				ul.insertBefore(card.li, prevLi ? prevLi.nextSibling : ul.firstChild);
			prevLi = card.li;
			keep.add(card.li);
		}
		keep.add(sec);
		prev = sec;
	}
	for (const sec of Array.from(sched.children)) {
		if (!keep.has(sec)) {
			sec.remove();
			continue;
		}
		for (const li of Array.from(sec.querySelectorAll('li')))
			if (!keep.has(li)) {
				li.remove();
				state.cards.delete(li.dataset.eventId);
			}
	}
	let empty = sched.querySelector('p.empty');
	if (!days.size && !empty) {
		empty = el('p', 'empty muted', 'No classes this week.');
		sched.append(empty);
	} else if (days.size && empty)
		empty.remove();
	sched.setAttribute('aria-busy', 'false');
}

/* ---- booking ---- */

function newKey() {
	if (window.crypto && crypto.randomUUID)
		return 'web-' + crypto.randomUUID();
	const a = new Uint8Array(16);
	crypto.getRandomValues(a);
	return 'web-' + Array.from(a, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function press(id) {
	const card = state.cards.get(id);
	const ev = state.events.find((e) => String(e.id) === id);
	const action = card && card.act.dataset.action;
	if (!ev || !action || state.busy.has(id))
		return;
	if (!customer()) {
		alarm('Sign in to book: open your sign-in link.');
		return;
	}
	/* the same press retried (after an error) keeps its key */
	let p = state.pending.get(id);
	if (!p || p.action !== action)
		p = { action, key: newKey() };
	state.pending.set(id, p);
	state.busy.add(id);
	card.act.setAttribute('aria-disabled', 'true');
	alarm('');
	say((action === 'book' ? 'Booking ' : 'Cancelling ') + ev.title + '…');
	try {
		let r;
		if (action === 'book') {
			r = await api('POST', '/v1/events/' + id + '/bookings',
				      { bearer: state.token, idem: p.key, body: {} });
		} else {
			const b = state.mine.get(id);
			r = await api('POST', '/v1/bookings/' + b.id + '/cancel',
				      { bearer: state.token, idem: p.key });
		}
		state.pending.delete(id);
		const b = r.body.booking;
		if (b.status === 'waitlisted')
			say('You are on the waitlist for ' + ev.title + ', number ' +
			    b.position + '.');
		else if (b.status === 'confirmed')
			say('Booked: ' + ev.title + '.');
		else if (b.status === 'pending_payment')
			say('Seat held for ' + ev.title + ': payment pending.');
		else if (b.status === 'cancelled')
			say('Cancelled: ' + ev.title + '.');
		if (ACTIVE.has(b.status))
			state.mine.set(id, b);
		else
			state.mine.delete(id);
	} catch (e) {
		if (e.code !== 'offline' && e.status !== 429)
			state.pending.delete(id); /* a refusal: a new press is new */
		explain(e, (action === 'book' ? 'Booking ' : 'Cancelling ') + ev.title);
		say('');
	} finally {
		state.busy.delete(id);
	}
	state.eventsTag = ''; /* draw the new seats now */
	await tick();
}

/* ---- start ---- */

async function start() {
	takeFragment();
	drawWho();
	window.addEventListener('offline', () => setOffline(true));
	/* a sign-in link opened on this page: only its fragment changes */
	window.addEventListener('hashchange', () => {
		takeFragment();
		state.mine.clear();
		drawWho();
		boot();
	});
	window.addEventListener('online', () => tick());
	$('prev').addEventListener('click', () => moveWeek(-1));
	$('next').addEventListener('click', () => moveWeek(1));
	$('signin').addEventListener('submit', (e) => {
		e.preventDefault();
		const v = $('signin-token').value.trim();
		if (claims(v))
			state.token = v;
		else
			state.key = v;
		store.setItem('bookd.key', state.key);
		store.setItem('bookd.token', state.token);
		$('signin-token').value = '';
		$('signin').hidden = true;
		drawWho();
		boot();
	});
	boot();
}

function moveWeek(d) {
	state.weekOffset = Math.max(0, state.weekOffset + d);
	state.eventsTag = '';
	state.events = [];
	drawAll();
	$('week').focus();
	tick();
}

async function boot() {
	if (!readCredential()) {
		$('signin').hidden = false;
		say('');
		return;
	}
	say('Loading the schedule…');
	try {
		await loadStudio();
	} catch (e) {
		explain(e, 'Loading the studio');
		if (e.status === 401)
			$('signin').hidden = false;
		if (e.status === 0 || e.status === 429 || e.status >= 500)
			setTimeout(boot, POLL_MS);
		return;
	}
	say('');
	tick();
}

document.addEventListener('DOMContentLoaded', start);
