#!/usr/bin/env bash
# The jobs you can see (docs/operations.md, Jobs): bookd with DATABASE_URL
# (a database of its own next to DATABASE_URL's, dropped at the end), the
# demo studio, --refresh-every 2 and --snapshot-every 5, until every job it
# runs has run; then the same jobs, each with a last run, result ok and a
# next run, in GET /v1/admin/status, in /metrics (bookd_job_*), in
# `bookctl status`, and in PostgreSQL through the seed's
# public.get_cron_job_status() and public.get_cron_job_history(24) (copied
# there every 10 s by the replicator's maintenance thread). Its webhook
# points at a closed port: notification_delivery runs every second, and
# once there are notifications (the demo's, a booking's) its attempts fail:
# the job shows failed in the status, /metrics and job_runs.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_jobs_e2e.sh
#
# Skipped (77) without DATABASE_URL, curl, psql or python3. Takes ~30 s
# (the first metrics flush is 10 s after start, its copy up to 10 s later).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

if [ -z "${DATABASE_URL:-}" ]; then
  echo "test_jobs_e2e: DATABASE_URL is not set, skipped"
  exit 77
fi
test_setup test_jobs_e2e curl psql python3
bookctl=$(dirname "$bookd")/bookctl
[ -x "$bookctl" ] || { echo "test_jobs_e2e: no $bookctl, skipped"; exit 77; }

testdb="bookd_jobs_test_$$"
url=$(db_make "$testdb") ||
  { echo "test_jobs_e2e: cannot create $testdb"; exit 1; }
cleanup() {
  stop_pid
  psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $testdb" \
    >/dev/null 2>&1
  keep_logs test_jobs_e2e "$tmp"
  rm -rf "$tmp"
}
export PGOPTIONS="--client-min-messages=warning"
val() { psql "$url" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# The jobs this bookd runs that end ok (notification delivery is checked
# below; pruning is not scheduled here).
want="hold_expiry idempotency_expiry generation archive snapshot
partitions_ahead view_refresh health_checks metrics_flush jobs_sync
reminders"

# a port nobody listens on: the webhook's attempts fail (refused)
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL=$url NOTIFY_WEBHOOK_URL=http://127.0.0.1:$closed/hook \
  NOTIFY_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "$bookd" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
  --data-dir "$tmp/data" --service-key svc --anon-key anon --demo \
  --refresh-every 2 --snapshot-every 5 >"$tmp/out" 2>"$tmp/bookd.log" &
pid=$!
line=$(started_line "$tmp/out") || { cat "$tmp/bookd.log"; echo "test_jobs_e2e: no start"; exit 1; }
http=$(printf '%s' "$line" | sed -E 's#.*HTTP on http://([^,]+),.*#\1#')
bin=$(printf '%s' "$line" | sed -E 's#.*binary protocol on ([^,]+),.*#\1#')

status() { curl -sf -H 'Authorization: Bearer svc' "http://$http/v1/admin/status"; }

# Every wanted job ran at least once (metrics_flush after 10 s).
ran=0 until=$((SECONDS + 40))
while [ "$SECONDS" -lt "$until" ]; do
  if status | python3 -c '
import json, sys
jobs = {j["name"]: j for j in json.load(sys.stdin)["jobs"]}
sys.exit(0 if all(jobs[n]["runs"] > 0 for n in sys.argv[1:]) else 1)
' $want; then ran=1; break; fi
  sleep 0.5
done
check "every job ran within 40 s" [ "$ran" = 1 ]

# /v1/admin/status: each job's fields, sane.
status >"$tmp/status.json"
if python3 - "$tmp/status.json" $want <<'EOF'
import json, sys, datetime
def t(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
now = datetime.datetime.now(datetime.timezone.utc).timestamp()
jobs = json.load(open(sys.argv[1]))["jobs"]
names = [j["name"] for j in jobs]
bad = []
if len(set(names)) != len(names):
    bad.append("names repeat")
for j in jobs:
    keys = {"name", "schedule", "active", "running", "last_run_at",
            "duration_ms", "result", "message", "next_run_at", "runs",
            "failures"}
    if set(j) != keys:
        bad.append("%s: keys %s" % (j["name"], sorted(j)))
    if j["runs"] == 0 and (j["result"] != "never" or j["last_run_at"]):
        bad.append("%s: never ran but %s" % (j["name"], j))
for n in sys.argv[2:]:
    j = next((j for j in jobs if j["name"] == n), None)
    if j is None:
        bad.append(n + ": missing"); continue
    if j["result"] != "ok" or j["failures"] != 0 or not j["active"]:
        bad.append("%s: %s" % (n, j))
        continue
    last = t(j["last_run_at"])
    if not (now - 600 < last <= now + 1):
        bad.append("%s: last run %s" % (n, j["last_run_at"]))
    if not (0 <= j["duration_ms"] < 60000):
        bad.append("%s: duration %s" % (n, j["duration_ms"]))
    if not j["schedule"]:
        bad.append(n + ": no schedule")
    if n == "snapshot":  # by log records, not by a clock
        if j["next_run_at"] is not None:
            bad.append("snapshot: next run %s" % j["next_run_at"])
        continue
    # due after its last run, and not far behind now (a loaded machine)
    nxt = t(j["next_run_at"])
    if not (nxt > last and nxt > now - 10):
        bad.append("%s: next run %s, last run %s, now %.3f" % (n, j["next_run_at"], j["last_run_at"], now))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF
then ok "status: every job with last run, result ok, next run"
else bad "status: jobs"; fi

# /metrics: the four families, a sample per job that ran.
curl -sf "http://$http/metrics" >"$tmp/metrics"
if python3 - "$tmp/metrics" $want <<'EOF'
import re, sys, time
text = open(sys.argv[1]).read()
now = time.time()
def sample(name, labels):
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)),
                  text, re.M)
    return float(m.group(1)) if m else None
bad = []
for fam, typ in (("bookd_job_last_run_timestamp_seconds", "gauge"),
                 ("bookd_job_last_duration_seconds", "gauge"),
                 ("bookd_job_runs_total", "counter"),
                 ("bookd_job_next_run_timestamp_seconds", "gauge")):
    if "# TYPE %s %s\n" % (fam, typ) not in text:
        bad.append("no TYPE line for " + fam)
for n in sys.argv[2:]:
    last = sample("bookd_job_last_run_timestamp_seconds", 'job="%s"' % n)
    dur = sample("bookd_job_last_duration_seconds", 'job="%s"' % n)
    runs = sample("bookd_job_runs_total", 'job="%s",result="ok"' % n)
    fails = sample("bookd_job_runs_total", 'job="%s",result="failed"' % n)
    nxt = sample("bookd_job_next_run_timestamp_seconds", 'job="%s"' % n)
    if last is None or not (now - 600 < last <= now + 1):
        bad.append("%s: last run %s" % (n, last))
    if dur is None or not (0 <= dur < 60):
        bad.append("%s: duration %s" % (n, dur))
    if not runs or fails != 0:
        bad.append("%s: runs %s failed %s" % (n, runs, fails))
    if n != "snapshot" and (nxt is None or nxt <= last):
        bad.append("%s: next run %s" % (n, nxt))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF
then ok "metrics: bookd_job_* for every job"
else bad "metrics: bookd_job_*"; fi

# bookctl status (the binary protocol's status): the same jobs.
"$bookctl" --addr "$bin" --key svc status >"$tmp/bookctl.json" 2>&1
if python3 - "$tmp/bookctl.json" "$tmp/status.json" $want <<'EOF'
import json, sys
got = json.load(open(sys.argv[1]))["jobs"]
http = json.load(open(sys.argv[2]))["jobs"]
bad = []
if [j["name"] for j in got] != [j["name"] for j in http]:
    bad.append("names differ from /v1/admin/status")
for n in sys.argv[3:]:
    j = next((j for j in got if j["name"] == n), None)
    if not j or j["result"] != "ok" or not j["last_run_at"] or j["runs"] < 1:
        bad.append("%s: %s" % (n, j))
    elif n != "snapshot" and not j["next_run_at"]:
        bad.append("%s: no next run" % n)
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF
then ok "bookctl status: the jobs"
else bad "bookctl status: jobs"; cat "$tmp/bookctl.json"; fi

# PostgreSQL: the copy (every 10 s) has every wanted job succeeded.
list=$(printf "'%s'," $want); list=${list%,}
copied=0 until=$((SECONDS + 30))
while [ "$SECONDS" -lt "$until" ]; do
  n=$(val "SELECT count(*) FROM public.get_cron_job_status()
           WHERE jobname IN ($list) AND last_run_status = 'succeeded'" 2>/dev/null)
  [ "$n" = "$(echo $want | wc -w)" ] && { copied=1; break; }
  sleep 0.5
done
check "get_cron_job_status(): every job succeeded" [ "$copied" = 1 ]
bad_rows=$(val "SELECT jobname FROM public.get_cron_job_status()
  WHERE jobname IN ($list) AND (NOT active OR runs < 1 OR failures <> 0
    OR last_run_started_at IS NULL
    OR last_run_started_at < now() - interval '10 minutes'
    OR last_run_duration < interval '0'
    OR (jobname <> 'snapshot' AND next_run <= last_run_started_at)
    OR (jobname IN ('generation', 'archive', 'partitions_ahead',
                    'health_checks') AND next_run <= now()))")
check "get_cron_job_status(): sane times [$bad_rows]" [ -z "$bad_rows" ]
check "get_cron_job_status(): one row per job" \
  [ "$(val "SELECT count(*) = count(DISTINCT jobname) AND count(*) >= 10
           FROM public.get_cron_job_status()")" = t ]
check "get_cron_job_history(24): runs of the noted jobs" \
  [ "$(val "SELECT count(DISTINCT jobname) FROM public.get_cron_job_history(24)
           WHERE jobname IN ('partitions_ahead', 'view_refresh',
                             'health_checks', 'snapshot')
             AND status = 'succeeded' AND end_time >= start_time
             AND start_time > now() - interval '10 minutes'")" = 4 ]
check "get_cron_job_history(0): nothing older than now" \
  [ "$(val "SELECT count(*) FROM public.get_cron_job_history(0)
           WHERE start_time < now() - interval '1 second'")" = 0 ]
# The seed's own calls, verbatim.
seed() { val "$1" >/dev/null; }
check "the seed's SELECT public.get_cron_job_status();" \
  seed "SELECT public.get_cron_job_status();"
check "the seed's SELECT public.get_cron_job_history(24);" \
  seed "SELECT public.get_cron_job_history(24);"

# A booking: its notifications cannot be delivered, the job fails.
event=$("$bookctl" --addr "$bin" --key svc list --limit 1 |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["events"][0]["id"])')
"$bookctl" --addr "$bin" --key svc --idem jobs-1 book --event "$event" \
  --customer cus_jobs >/dev/null
failed_seen=0 until=$((SECONDS + 30))
while [ "$SECONDS" -lt "$until" ]; do
  if status | python3 -c '
import json, sys
j = [j for j in json.load(sys.stdin)["jobs"] if j["name"] == "notification_delivery"][0]
ok = (j["active"] and j["runs"] > 1 and j["failures"] > 0 and
      j["next_run_at"] and j["schedule"])
sys.exit(0 if ok else 1)'; then failed_seen=1; break; fi
  sleep 0.5
done
check "notification_delivery: a failed run once the webhook refuses" \
  [ "$failed_seen" = 1 ]
check "metrics: notification_delivery's failed runs counted" \
  python3 -c '
import re, sys, urllib.request
text = urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode()
m = re.search(r"^bookd_job_runs_total\{job=\"notification_delivery\",result=\"failed\"\} (\d+)$", text, re.M)
sys.exit(0 if m and int(m.group(1)) > 0 else 1)' "$http"
in_pg=0 until=$((SECONDS + 30))
while [ "$SECONDS" -lt "$until" ]; do
  [ "$(val "SELECT count(*) > 0 FROM public.get_cron_job_history(1)
            WHERE jobname = 'notification_delivery' AND status = 'failed'
              AND return_message LIKE '%failed attempts%'")" = t ] &&
    { in_pg=1; break; }
  sleep 0.5
done
check "get_cron_job_history: notification_delivery's failed run" [ "$in_pg" = 1 ]

stop_pid
if grep -q "ERROR: \(AddressSanitizer\|ThreadSanitizer\|LeakSanitizer\)\|WARNING: ThreadSanitizer" "$tmp/bookd.log"; then
  bad "sanitizer report"; grep -A20 Sanitizer "$tmp/bookd.log" | head -40
fi
echo "jobs: $passed passed, $failed failed"
[ "$failed" = 0 ]
