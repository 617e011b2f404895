#!/usr/bin/env bash
# /metrics read by a real Prometheus text parser (issue 15): bookd --demo on
# free ports takes a known load (NH bookings over HTTP, NB over the binary
# protocol with bookctl, NL listings over HTTP, anon-key listings past
# BOOKD_ANON_RATE=1 until refused), then python3-prometheus-client's
# text_string_to_metric_families parses the scrape, with a binary
# connection held open, and the test checks:
#   - every family has HELP and TYPE, no family name twice;
#   - every histogram (request latency by op and protocol, the log's fsync
#     latency, the log's batch sizes): buckets cumulative and monotone in
#     le, +Inf == _count, _sum within what the buckets allow;
#   - the request counts are the requests sent, per op and protocol;
#   - bookd, bookctl and bookbench --version say the same version and
#     build type; bookd_build_info's version is bookd --version's; process_* present
#     and plausible; connections by protocol; refusals by limit == the 429s
#     curl saw.
#
#   bash tests/integration/test_metrics.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) without bookd, bookctl, curl or a python3 that has
# prometheus_client (Debian's python3-prometheus-client; /usr/bin/python3
# is tried when the first python3 on PATH lacks it).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_metrics curl
bookctl=$(dirname "$bookd")/bookctl
[ -x "$bookctl" ] || { echo "test_metrics: no bookctl, skipped"; exit 77; }
py=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "test_metrics: no python3 with prometheus_client, skipped"; exit 77; }

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM
NH=30 NB=20 NL=25

env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON \
  BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
  BOOKD_DATA_DIR=$tmp/data BOOKD_ANON_RATE=1 BOOKD_DEMO=1 \
  "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
line=$(started_line "$tmp/bookd.log") || { echo "bookd did not start:"; cat "$tmp/bookd.log"; exit 1; }
URL=$(printf '%s\n' "$line" | grep -o 'http://[0-9.:]*')
BIN=$(printf '%s\n' "$line" | grep -o 'binary protocol on [0-9.:]*' | sed 's/binary protocol on //')
echo "bookd at $URL, binary $BIN (log $tmp/bookd.log)"
# (the demo's own bookings are core calls of bookd's, not requests: none
# is counted)

# The load. Every booking is answered (booked, waitlisted or sold out):
# each is one request of op "book".
for i in $(seq 1 $NH); do
  curl -s -o /dev/null -X POST "$URL/v1/events/1/bookings" \
    -H "Authorization: Bearer $SVC" -H "Idempotency-Key: m-$i" \
    -H 'Content-Type: application/json' -d "{\"customer_id\":\"h$i\"}"
done
for i in $(seq 1 $NB); do
  "$bookctl" --addr "$BIN" --key "$SVC" book --event 2 --customer "b$i" >/dev/null 2>&1
done
for i in $(seq 1 $NL); do
  curl -s -o /dev/null "$URL/v1/events?limit=2" -H "Authorization: Bearer $SVC"
done
# anon key at 1/s, burst 2: some of these are refused (429), the rest are
# listings too
refused=0 anon_ok=0
for i in $(seq 1 8); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/events?limit=1" -H "Authorization: Bearer $ANON")
  case $code in 429) refused=$((refused + 1)) ;; 200) anon_ok=$((anon_ok + 1)) ;; esac
done
echo "load: $NH HTTP bookings, $NB binary, $NL + $anon_ok listings, $refused refused"
version=$("$bookd" --version | awk '{print $2}')
# --version of every program: the same version and build type
bench=$(dirname "$bookd")/../bench/bookbench
vb=$("$bookd" --version) vc=$("$bookctl" --version)
check "bookd --version: $vb" test -n "$version" -a "$vb" = "bookd $version (${vb#*(}"
check "bookctl --version: $vc" test "$vc" = "bookctl ${vb#bookd }"
if [ -x "$bench" ]; then
  vbb=$("$bench" --version)
  check "bookbench --version: $vbb" test "$vbb" = "bookbench ${vb#bookd }"
fi

"$py" - "$URL" "$BIN" "$tmp/after.txt" <<EOF
import socket, sys, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

url, binaddr, save = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = binaddr.rsplit(':', 1)
held = socket.create_connection((host, int(port)))  # one binary connection
time.sleep(0.2)
text = urllib.request.urlopen(url + '/metrics').read().decode()
held.close()
open(save, 'w').write(text)
passed = failed = 0
def check(what, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1; print('ok  ', what)
    else:
        failed += 1; print('FAIL', what, detail)

# HELP and TYPE of every family, as written (the parser fills in
# "untyped" for a family without TYPE)
helps = {l.split()[2] for l in text.splitlines() if l.startswith('# HELP ')}
types = {l.split()[2] for l in text.splitlines() if l.startswith('# TYPE ')}
fams = list(text_string_to_metric_families(text))
names = [f.name for f in fams]
check('parsed: %d families' % len(fams), len(fams) > 30)
check('no family name twice', len(names) == len(set(names)),
      sorted(n for n in names if names.count(n) > 1))
check('every family has HELP and TYPE', helps == types and
      all(f.type != 'unknown' and f.documentation for f in fams),
      sorted(helps ^ types))
by = {f.name: f for f in fams}

def series(fam):
    """histogram samples grouped by their labels without le"""
    out = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != 'le'))
        d = out.setdefault(key, {'buckets': [], 'sum': None, 'count': None})
        if s.name.endswith('_bucket'):
            d['buckets'].append((float(s.labels['le']), s.value))
        elif s.name.endswith('_sum'):
            d['sum'] = s.value
        elif s.name.endswith('_count'):
            d['count'] = s.value
    return out

hists = [f for f in fams if f.type == 'histogram']
check('histograms: request latency, fsync, batch sizes',
      {'bookd_request_duration_seconds', 'bookd_wal_fsync_seconds',
       'bookd_wal_batch_records'} <= {f.name for f in hists},
      [f.name for f in hists])
for f in hists:
    for key, d in series(f).items():
        b = sorted(d['buckets'])
        les = [le for le, _ in b]
        counts = [c for _, c in b]
        name = f.name + str(dict(key))
        ok = (len(b) >= 2 and les[-1] == float('inf') and
              all(x <= y for x, y in zip(counts, counts[1:])) and
              d['count'] == counts[-1] and d['sum'] is not None)
        # the sum lies between what each bucket's lower and upper bound
        # allow (the +Inf bucket: at least its lower bound)
        lo = hi = 0.0
        prev_le, prev_c = 0.0, 0.0
        for le, c in b:
            n = c - prev_c
            lo += n * prev_le
            hi += n * le if n else 0.0
            prev_le, prev_c = le, c
        ok = ok and lo * 0.999 <= d['sum'] <= hi * 1.001 + 1e-9
        check('%s: cumulative, +Inf == _count (%g), _sum %g in [%g, %g]'
              % (name, d['count'] or 0, d['sum'] or 0, lo, hi), ok, b)

def hcount(op, proto):
    for s in by['bookd_request_duration_seconds'].samples:
        if s.name.endswith('_count') and s.labels == {'op': op, 'protocol': proto}:
            return s.value
    return 0

check('book over HTTP: %d counted' % $NH, hcount('book', 'http') == $NH,
      hcount('book', 'http'))
check('book over binary: %d counted' % $NB, hcount('book', 'binary') == $NB,
      hcount('book', 'binary'))
check('event_list over HTTP: %d counted' % ($NL + $anon_ok),
      hcount('event_list', 'http') == $NL + $anon_ok, hcount('event_list', 'http'))
check('no listing over binary', hcount('event_list', 'binary') == 0)
bi = by['bookd_build_info'].samples[0]
check('bookd_build_info{version="$version"} 1',
      bi.labels.get('version') == '$version' and bi.labels.get('build_type')
      and bi.value == 1, bi)
p = {f.name: f.samples[0].value for f in fams if f.name.startswith('process_')}
now = time.time()
check('process_*: rss %d, vsz %d, fds %d/%d, cpu %.2f s, started %.0f s ago'
      % (p.get('process_resident_memory_bytes', 0),
         p.get('process_virtual_memory_bytes', 0), p.get('process_open_fds', 0),
         p.get('process_max_fds', 0), p.get('process_cpu_seconds', -1),
         now - p.get('process_start_time_seconds', 0)),
      0 < p.get('process_resident_memory_bytes', 0) <= p.get('process_virtual_memory_bytes', 0)
      and 0 < p.get('process_open_fds', 0) < p.get('process_max_fds', 0)
      and 0 <= p.get('process_cpu_seconds', -1) < 600
      and 0 <= now - p.get('process_start_time_seconds', 0) < 600, p)
conns = {s.labels['protocol']: s.value for s in by['bookd_connections_open'].samples}
check('connections by protocol: %s' % conns,
      conns.get('binary', 0) >= 1 and conns.get('http', 0) >= 1)
ref = {s.labels['limit']: s.value for s in by['bookd_rate_limit_refusals'].samples}
check('refusals by limit: %s, %d 429s seen' % (ref, $refused),
      ref.get('key') == $refused and $refused > 0 and ref.get('address') == 0)
batch = series(by['bookd_wal_batch_records'])[()]
check('log batches: %d records in %d batches (>= %d bookings)'
      % (batch['sum'], batch['count'], $NH + $NB),
      batch['sum'] >= $NH + $NB and batch['count'] >= 1)
print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
EOF
[ $? = 0 ] && ok "the parsed metrics' checks" || bad "the parsed metrics' checks"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
