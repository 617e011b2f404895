// status.js: the status page's figures (/status, status.html). Every second
// it reads /v1/admin/status (the service key from sessionStorage) and
// /metrics, keeps five minutes of samples, and shows: decisions/s (the
// deciding operations of bookd_operations_total: everything but reads and
// ticks), requests/s, request latency p50/p95/p99 and the 5xx share over
// the last 10 s (bookd_request_duration_seconds, bookd_responses_total),
// the log's position and fsync latency (bookd_wal_fsync_seconds over 10 s),
// replication, notifications, payments, jobs, and the alerts: the server's
// and the seed's thresholds on the live figures (booking p95 > 2 s warning,
// > 5 s critical; 5xx > 5 % warning, > 20 % critical of at least 20
// answers). Plain DOM and SVG; no other host; nothing logged.
'use strict';

const KEY = 'bookd-service-key';
const PERIOD_MS = 1000;
const KEEP = 300; // samples: five minutes
const WINDOW_S = 10; // latency and error windows
const READS = new Set(['event_get', 'booking_get', 'customer_bookings',
	'event_list', 'catalog_get', 'catalog_list', 'tick']);

const $ = (id) => document.getElementById(id);
const samples = []; // { t, m: parsed metrics, s: status }
let timer = null;

// Prometheus text format: { name: [{ labels, value }] }
function parseMetrics(text) {
	const out = {};
	for (const line of text.split('\n')) {
		if (!line || line[0] === '#')
			continue;
		const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)/
			.exec(line);
		if (!m)
			continue;
		const labels = {};
		for (const l of (m[3] || '').matchAll(/(\w+)="([^"]*)"/g))
			labels[l[1]] = l[2];
		(out[m[1]] = out[m[1]] || []).push({
			labels, value: Number(m[4]),
		});
	}
	return out;
}

function sum(m, name, pred) {
	let n = 0;
	for (const s of m[name] || [])
		if (!pred || pred(s.labels))
			n += s.value;
	return n;
}

// cumulative buckets { le: count } summed over the samples pred keeps
function buckets(m, name, pred) {
	const b = new Map();
	for (const s of m[name + '_bucket'] || [])
		if (!pred || pred(s.labels))
			b.set(s.labels.le, (b.get(s.labels.le) || 0) + s.value);
	return b;
}

// q-quantile (seconds) of what fell into the buckets between two
// snapshots, interpolated inside its bucket as Prometheus does; null when
// nothing fell
function quantile(q, now, then) {
	const les = [...now.keys()].sort((a, b) => Number(a) - Number(b));
	const d = les.map((le) => (now.get(le) || 0) - (then.get(le) || 0));
	const total = d.length ? d[d.length - 1] : 0;
	if (total <= 0)
		return null;
	const rank = q * total;
	for (let i = 0; i < les.length; i++) {
		if (d[i] < rank)
			continue;
		const hi = Number(les[i]);
		const lo = i ? Number(les[i - 1]) : 0;
		if (!isFinite(hi))
			return lo;
		const below = i ? d[i - 1] : 0;
		const inside = d[i] - below;
		return inside > 0 ? lo + (hi - lo) * (rank - below) / inside : hi;
	}
	return null;
}

function figures(m) {
	const dec = (l) => !READS.has(l.op);
	return {
		decisions: sum(m, 'bookd_operations_total', dec),
		requests: sum(m, 'bookd_requests_total'),
		answers: sum(m, 'bookd_responses_total'),
		errors: sum(m, 'bookd_responses_total', (l) => l.class === '5xx'),
		lat: buckets(m, 'bookd_request_duration_seconds'),
		book: buckets(m, 'bookd_request_duration_seconds',
			(l) => l.op === 'book'),
		fsync: buckets(m, 'bookd_wal_fsync_seconds'),
	};
}

// the sample at least s seconds before the last (else the oldest)
function before(s) {
	const last = samples[samples.length - 1];
	for (let i = samples.length - 2; i >= 0; i--)
		if (last.t - samples[i].t >= s * 1000)
			return samples[i];
	return samples[0];
}

const ms = (s) => s === null ? '-' : (s * 1000).toFixed(s < 0.01 ? 3 : 1);
const num = (n) => Number(n).toLocaleString('en');

function rate(key, a, b) {
	const dt = (b.t - a.t) / 1000;
	return dt > 0 ? Math.max(0, (b.f[key] - a.f[key]) / dt) : 0;
}

function chart(svg, values, fmt) {
	const W = 300, H = 60;
	svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
	svg.setAttribute('preserveAspectRatio', 'none');
	const max = Math.max(...values.filter((v) => v !== null), 0);
	const span = Math.max(60, values.length);
	const pts = values.map((v, i) => {
		// the newest at the right edge; one minute across, growing
		// with the samples to KEEP (five minutes)
		const x = W - (values.length - 1 - i) * W / (span - 1);
		const y = H - 2 - (max > 0 ? (v || 0) / max * (H - 14) : 0);
		return `${x.toFixed(1)},${y.toFixed(1)}`;
	}).join(' ');
	svg.replaceChildren();
	const ns = 'http://www.w3.org/2000/svg';
	const line = document.createElementNS(ns, 'polyline');
	line.setAttribute('points', pts);
	line.setAttribute('class', 'line');
	const label = document.createElementNS(ns, 'text');
	label.setAttribute('x', '2');
	label.setAttribute('y', '10');
	label.textContent = `max ${fmt(max)}`;
	svg.append(line, label);
}

function alertItem(severity, name, message) {
	const li = document.createElement('li');
	li.className = severity;
	const b = document.createElement('b');
	b.textContent = `${severity} ${name}`;
	li.append(b, `: ${message}`);
	return li;
}

function render() {
	const cur = samples[samples.length - 1];
	const prev = samples.length > 1 ? samples[samples.length - 2] : cur;
	const win = before(WINDOW_S);
	const s = cur.s;

	cur.decisionRate = rate('decisions', prev, cur);
	cur.requestRate = rate('requests', prev, cur);
	cur.walRate = prev === cur ? 0 : Math.max(0,
		(s.wal.appended_lsn - prev.s.wal.appended_lsn) /
		((cur.t - prev.t) / 1000));
	cur.p99 = quantile(0.99, cur.f.lat, win.f.lat);
	cur.fsync99 = quantile(0.99, cur.f.fsync, win.f.fsync);
	const answers = cur.f.answers - win.f.answers;
	const errors = cur.f.errors - win.f.errors;
	cur.errorShare = answers > 0 ? errors / answers : 0;
	const bookP95 = quantile(0.95, cur.f.book, win.f.book);

	$('summary').textContent = `bookd ${s.version} (${s.build_type}), ` +
		`${s.status}, ${s.shards} shard(s), ${s.threads} thread(s), ` +
		`${num(s.connections)} connection(s), up since ` +
		`${s.started_at}`;
	$('decisions-rate').textContent = cur.decisionRate.toFixed(1);
	$('requests-rate').textContent = cur.requestRate.toFixed(1);
	$('lat-p50').textContent = ms(quantile(0.5, cur.f.lat, win.f.lat));
	$('lat-p95').textContent = ms(quantile(0.95, cur.f.lat, win.f.lat));
	$('lat-p99').textContent = ms(cur.p99);
	$('error-share').textContent = answers > 0
		? `${(cur.errorShare * 100).toFixed(1)} % of ${num(answers)}`
		: 'no answers';
	$('wal-durable').textContent = num(s.wal.durable_lsn);
	$('wal-appended').textContent = num(s.wal.appended_lsn);
	$('fsync-p50').textContent = ms(quantile(0.5, cur.f.fsync,
		win.f.fsync));
	$('fsync-p99').textContent = ms(cur.fsync99);
	$('fsync-max').textContent = (s.wal.fsync_latency_us.max / 1000)
		.toFixed(1);
	const r = s.replication;
	$('repl-state').textContent = r.state;
	$('repl-lag').textContent = `${num(r.lag_records)} records, ` +
		`${r.lag_seconds.toFixed(1)} s`;
	const n = s.notifications;
	$('notify-state').textContent = n.state;
	$('notify-backlog').textContent = num(n.backlog);
	$('notify-dead').textContent = num(n.dead_letters);
	$('payments-state').textContent = s.payments.state;
	$('payments-pending').textContent = num(s.payments.pending);

	const pick = (k) => samples.map((x) => x[k] ?? null);
	const pct = (v) => `${(v * 100).toFixed(1)} %`;
	chart($('chart-decisions'), pick('decisionRate'), (v) => v.toFixed(0));
	chart($('chart-requests'), pick('requestRate'), (v) => v.toFixed(0));
	chart($('chart-latency'), pick('p99'), (v) => `${ms(v)} ms`);
	chart($('chart-errors'), pick('errorShare'), pct);
	chart($('chart-wal'), pick('walRate'), (v) => `${v.toFixed(0)}/s`);
	chart($('chart-fsync'), pick('fsync99'), (v) => `${ms(v)} ms`);
	chart($('chart-repl'), samples.map((x) => x.s.replication.lag_records),
		num);
	chart($('chart-notify'), samples.map((x) => x.s.notifications.backlog),
		num);

	const alerts = [];
	for (const a of s.alerts)
		alerts.push(alertItem(a.severity, a.name, a.message));
	if (bookP95 !== null && bookP95 > 2)
		alerts.push(alertItem(bookP95 > 5 ? 'critical' : 'warning',
			'booking_latency', `bookings' p95 over ${WINDOW_S} s is ` +
			`${bookP95.toFixed(1)} s (the seed's: > 2 s warning, ` +
			'> 5 s critical)'));
	if (answers >= 20 && cur.errorShare > 0.05)
		alerts.push(alertItem(cur.errorShare > 0.2 ? 'critical'
			: 'warning', 'errors', `${pct(cur.errorShare)} of ` +
			`${answers} answers over ${WINDOW_S} s were 5xx (the ` +
			"seed's: > 5 % warning, > 20 % critical)"));
	if (!alerts.length) {
		const li = document.createElement('li');
		li.className = 'none';
		li.textContent = 'none';
		alerts.push(li);
	}
	$('alerts').replaceChildren(...alerts);

	const rows = s.jobs.map((j) => {
		const tr = document.createElement('tr');
		for (const v of [j.name, j.schedule ?? '-', j.last_run_at ?? '-',
			j.result + (j.message ? `: ${j.message}` : ''), j.runs,
			j.failures, j.next_run_at ?? '-']) {
			const td = document.createElement('td');
			td.textContent = String(v);
			tr.append(td);
		}
		if (j.result === 'failed')
			tr.className = 'failed';
		return tr;
	});
	$('jobs').replaceChildren(...rows);
}

function askKey(message) {
	clearTimeout(timer);
	timer = null;
	$('board').hidden = true;
	$('key-form').hidden = false;
	$('key-error').textContent = message || '';
	$('summary').textContent = 'Not connected.';
	$('key').focus();
}

async function poll() {
	const key = sessionStorage.getItem(KEY);
	if (!key)
		return askKey();
	try {
		const [st, me] = await Promise.all([
			fetch('/v1/admin/status', {
				headers: { Authorization: `Bearer ${key}` },
				cache: 'no-store',
			}),
			fetch('/metrics', { cache: 'no-store' }),
		]);
		if (st.status === 401 || st.status === 403) {
			sessionStorage.removeItem(KEY);
			return askKey('That key was refused: the service key ' +
				'is needed.');
		}
		if (!st.ok || !me.ok)
			throw new Error(`answers ${st.status} and ${me.status}`);
		const s = await st.json();
		const f = figures(parseMetrics(await me.text()));
		samples.push({ t: Date.now(), s, f });
		if (samples.length > KEEP)
			samples.shift();
		$('key-form').hidden = true;
		$('board').hidden = false;
		render();
	} catch (e) {
		$('summary').textContent = `bookd did not answer (${e.message}); ` +
			'trying again';
	}
	timer = setTimeout(poll, PERIOD_MS);
}

$('key-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	sessionStorage.setItem(KEY, $('key').value);
	$('key').value = '';
	samples.length = 0;
	poll();
});
$('forget').addEventListener('click', () => {
	sessionStorage.removeItem(KEY);
	samples.length = 0;
	askKey();
});
poll();
