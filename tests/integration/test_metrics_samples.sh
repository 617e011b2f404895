#!/usr/bin/env bash
# The seed's dashboard query gives true figures (docs/operations.md,
# "Monitoring in PostgreSQL"): bookd replicating into a real PostgreSQL,
#   - N bookings, one at a time, each timed by the client (curl's
#     time_total): the seed's "Booking performance" query counts exactly N
#     for `book`, each row at sample_rate 1, its refused ones (409) tagged
#     outcome refused, as many as the client saw; the server's times are
#     within the client's (AVG and p95 no larger than the client's, and
#     larger than 0);
#   - restarted with --metrics-samples 20, 2.5 s of reads (3 clients): fewer rows than requests,
#     rows at sample_rates below 1, and the sum of 1/sample_rate estimates
#     the request count within a factor 2.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_metrics_samples.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_metrics_samples curl jq
pg_need test_metrics_samples
db_create bookd_samples
N=60

bookd_start "$tmp/bookd.log"
catalog 10 0
# N + 6 bookings round-robin over 6 events of 10 seats: N confirmed, the
# last one on each event 409 event_full.
: >"$tmp/times"
refused=0
for i in $(seq 0 $((N + 5))); do
  ev=${EVENTS[$((i % 6))]}
  st=$(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST \
    -H "Authorization: Bearer $SVC" -H "Idempotency-Key: k$i" \
    -H 'Content-Type: application/json' -d "{\"customer_id\":\"c$i\"}" \
    "$URL/v1/events/$ev/bookings" | tee -a "$tmp/times" | cut -d' ' -f1)
  [ "$st" = 409 ] && refused=$((refused + 1))
done
total=$((N + 6))
check "client: $total bookings answered, $refused refused (409)" \
  test "$(wc -l <"$tmp/times")" = "$total" -a "$refused" = 6

dash="SELECT tags->>'operation' as operation, AVG(metric_value) as avg_ms,
  PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY metric_value) as p95_ms,
  COUNT(*) as count
FROM public.performance_metrics
WHERE metric_name = 'booking_operation_duration'
  AND recorded_at > now() - interval '24 hours'
GROUP BY tags->>'operation'"
for _ in $(seq 1 100); do # flushed every second
  [ "$(q "SELECT count FROM ($dash) d WHERE operation = 'book'")" = "$total" ] && break
  sleep 0.1
done
check "the seed's dashboard query counts every booking ($total)" \
  test "$(q "SELECT count FROM ($dash) d WHERE operation = 'book'")" = "$total"
check "every booking sample at sample_rate 1" \
  test "$(q "SELECT count(*) FROM performance_metrics WHERE tags->>'operation' = 'book'
             AND (tags->>'sample_rate')::float8 = 1")" = "$total"
check "outcomes as the client saw them: $refused refused, the rest ok" \
  test "$(q "SELECT count(*) FILTER (WHERE tags->>'outcome' = 'refused') || '/' ||
                    count(*) FILTER (WHERE tags->>'outcome' = 'ok')
             FROM performance_metrics WHERE tags->>'operation' = 'book'")" \
    = "$refused/$N"
# the client's own figures, in ms, by the same definitions
read -r c_avg c_p95 < <(q "SELECT avg(t), percentile_cont(0.95) WITHIN GROUP (ORDER BY t)
  FROM unnest(ARRAY[$(cut -d' ' -f2 "$tmp/times" | awk '{printf "%s%s", sep, $1 * 1000; sep=","}')]::float8[]) t" | tr '|' ' ')
read -r s_avg s_p95 < <(q "SELECT avg_ms, p95_ms FROM ($dash) d WHERE operation = 'book'" | tr '|' ' ')
echo "     book: server avg $s_avg ms p95 $s_p95 ms; client avg $c_avg ms p95 $c_p95 ms"
check "the server's AVG and p95 are within the client's" \
  awk -v sa="$s_avg" -v sp="$s_p95" -v ca="$c_avg" -v cp="$c_p95" \
    'BEGIN { exit !(sa > 0 && sp > 0 && sa <= ca && sp <= cp) }'

# ---- a burst of reads, sampled ----------------------------------------------------
stop_pid
bookd_start "$tmp/bookd.log" --metrics-samples 20
caught_up # the maintenance thread connected: its flushes (and the
sleep 1.5  # rates they set) run during the burst
reads=300 # a round; each client repeats rounds for 2.5 s: a flush (and the
: >"$tmp/urls" # rate it sets) falls inside the burst however fast it goes
for i in $(seq 1 $reads); do
  printf 'url = "%s/v1/events/%s"\noutput = "/dev/null"\n' "$URL" "${EVENTS[0]}" >>"$tmp/urls"
done
t0=$(date +%s%N)
cpids=()
for c in 1 2 3; do # three clients
  (end=$(( $(date +%s%N) + 2500000000 ))
   while [ "$(date +%s%N)" -lt $end ]; do
     curl -s -w "%{http_code}\n" -K "$tmp/urls" -H "Authorization: Bearer $SVC"
   done) >"$tmp/codes.$c" & cpids+=($!)
done
wait "${cpids[@]}"
total_reads=$(cat "$tmp"/codes.* | wc -l)
check "reads: all answered 200" test "$(grep -vc "^200$" "$tmp"/codes.* | awk -F: '{ n += $2 } END { print n }')" = 0
echo "     $total_reads reads in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
sleep 2.5 # two flushes
rows=$(q "SELECT count(*) FROM performance_metrics WHERE tags->>'operation' = 'event_get'")
est=$(q "SELECT round(sum(1 / (tags->>'sample_rate')::float8)) FROM performance_metrics
         WHERE tags->>'operation' = 'event_get'")
below=$(q "SELECT count(*) FROM performance_metrics WHERE tags->>'operation' = 'event_get'
           AND (tags->>'sample_rate')::float8 < 1")
echo "     event_get: $rows rows, $below below sample_rate 1, estimate $est of $total_reads"
check "reads: fewer rows than requests, some below sample_rate 1" \
  test "$rows" -lt "$total_reads" -a "$below" -gt 0
check "reads: sum(1/sample_rate) within a factor 2 of the requests" \
  awk -v e="$est" -v n="$total_reads" 'BEGIN { exit !(e >= n / 2 && e <= 2 * n) }'
check "no sample dropped" \
  test "$(q "SELECT count(*) FROM performance_metrics WHERE metric_name = 'performance_samples_dropped'")" = 0
stop_pid

echo "metrics_samples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
