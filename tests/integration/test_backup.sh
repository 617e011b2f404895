#!/usr/bin/env bash
# test_backup: scripts/backup.sh and scripts/restore.sh (bookd-backup,
# wal/wal_backup.c; docs/operations.md "Backup and restore"). bookd runs
# with background snapshots every 300 records and takes bookings from 4
# HTTP clients (python3, keep-alive) all along; a backup is taken while
# they book (bookd asked for a snapshot first), a second one without the
# snapshot; each restores into a new dir on which bookd starts without
# cutting anything (no --accept-log-loss, no "cut" in its log), holds
# every booking acknowledged before its backup began (each read back,
# same customer and event), and takes new bookings. restore.sh refuses a
# backup whose bytes changed and a data dir that is not empty.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
test_setup test_backup python3
tool=$(dirname "$bookd")/bookd-backup
[ -x "$tool" ] || { echo "test_backup: $tool not built, skipped"; exit 77; }
export BOOKD_BACKUP_BIN=$tool
bookctl=$(dirname "$bookd")/bookctl
scripts=$lib_root/scripts
http_a=127.0.0.1:26031 bin_a=127.0.0.1:26032
http_b=127.0.0.1:26033 bin_b=127.0.0.1:26034
key=svc-backup-test
pid_b= lpid=
cleanup() {
  stop_pid
  [ -n "$pid_b" ] && kill "$pid_b" 2>/dev/null && wait "$pid_b" 2>/dev/null
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
  keep_logs "$test_name" "$tmp"
  rm -rf "$tmp"
}

cat >"$tmp/load.py" <<'PY'
# load.py ADDR KEY EVENT PREFIX COUNT OUT: 4 threads book COUNT seats
# (COUNT 0: until the file OUT.stop exists) for customers PREFIX<n>, each
# on one keep-alive connection; each acknowledged booking (201) is
# appended to OUT as "id customer" the moment its answer arrives.
import http.client, json, os, sys, threading
addr, key, event, prefix, count, out = sys.argv[1:7]
count = int(count)
host, port = addr.rsplit(":", 1)
lock, n, errors = threading.Lock(), [0], []
f = open(out, "a")
def worker():
    try:
        book()
    except Exception as e:
        errors.append(repr(e))
def book():
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    while True:
        with lock:
            if (count and n[0] >= count) or (not count and os.path.exists(out + ".stop")):
                return
            n[0] += 1
            cust = "%s%d" % (prefix, n[0])
        c.request("POST", "/v1/events/%s/bookings" % event,
                  body=json.dumps({"customer_id": cust}),
                  headers={"Authorization": "Bearer " + key,
                           "Idempotency-Key": "k-" + cust,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status != 201:
            errors.append("booking %s: %d %s" % (cust, r.status, body))
            return
        with lock:
            f.write("%s %s\n" % (json.loads(body)["booking"]["id"], cust))
            f.flush()
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
sys.exit("\n".join(errors) if errors else 0)
PY

cat >"$tmp/check.py" <<'PY'
# check.py ADDR KEY EVENT ACKED: every "id customer" of ACKED is a
# booking of EVENT for that customer at ADDR; prints the count.
import http.client, json, sys
addr, key, event, acked = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=30)
missing = 0
lines = [l.split() for l in open(acked) if l.strip()]
for bid, cust in lines:
    c.request("GET", "/v1/bookings/" + bid, headers={"Authorization": "Bearer " + key})
    r = c.getresponse()
    body = r.read()
    b = json.loads(body).get("booking", {}) if r.status == 200 else {}
    if b.get("customer_id") != cust or b.get("event_id") != event:
        missing += 1
        print("missing or wrong: %s %s: %d %s" % (bid, cust, r.status, body[:200]))
print("%d of %d acknowledged bookings there" % (len(lines) - missing, len(lines)))
sys.exit(1 if missing or not lines else 0)
PY

# ---- bookd A: a series of one big event, 100 bookings ----
"$bookd" --data-dir "$tmp/a" --listen "$http_a" --binary-listen "$bin_a" \
  --service-key "$key" --snapshot-every 300 >"$tmp/a.log" 2>&1 &
pid=$!
started_line "$tmp/a.log" >/dev/null || { cat "$tmp/a.log"; exit 1; }
ctl() { "$bookctl" --addr "$bin_a" --key "$key" "$@" >/dev/null; }
ctl org create --name Backup --timezone UTC &&
  ctl location create --org 1 --name Hall &&
  ctl instructor create --org 1 --name Ann &&
  ctl series create --org 1 --location 1 --instructor 1 --title Big \
    --capacity 100000 --timezone UTC --weekdays MO,TU,WE,TH,FR,SA,SU \
    --start 23:30 --duration 30 --first "$(date -u -d tomorrow +%F)" \
    --last "$(date -u -d tomorrow +%F)"
check "a studio with one event of 100000 seats" test $? -eq 0
check "100 bookings" python3 "$tmp/load.py" "$http_a" "$key" 1 pre- 100 "$tmp/acked"

# ---- bookings go on; two backups meanwhile ----
python3 "$tmp/load.py" "$http_a" "$key" 1 during- 0 "$tmp/acked" &
lpid=$!
for _ in $(seq 1 200); do # until the second load is under way
  [ "$(wc -l <"$tmp/acked")" -ge 200 ] && break
  sleep 0.1
done
cp "$tmp/acked" "$tmp/acked-before-1"
check "backup.sh while bookd books (with a snapshot asked for)" \
  bash "$scripts/backup.sh" "$tmp/a" "$tmp/bk1"
grep -q 'SIGUSR1: snapshot' "$tmp/a.log"
check "bookd took the snapshot asked for (SIGUSR1)" test $? -eq 0
sleep 0.5
cp "$tmp/acked" "$tmp/acked-before-2"
check "backup.sh --no-snapshot while bookd books" \
  bash "$scripts/backup.sh" --no-snapshot "$tmp/a" "$tmp/bk2"
sleep 0.5
touch "$tmp/acked.stop"
wait "$lpid"
check "the bookings during the backups all succeeded" test $? -eq 0
lpid=
echo "  acknowledged: $(wc -l <"$tmp/acked-before-1") before backup 1, $(wc -l <"$tmp/acked-before-2") before backup 2, $(wc -l <"$tmp/acked") in all"
check "bookd A kept booking during the backups" \
  test "$(wc -l <"$tmp/acked")" -gt "$(wc -l <"$tmp/acked-before-1")"
check "MANIFEST in the backup" test -s "$tmp/bk1/MANIFEST"
check "no LOCK copied" test ! -e "$tmp/bk1/LOCK"

# ---- each backup restored, started, compared ----
for n in 1 2; do
  check "restore.sh backup $n" bash "$scripts/restore.sh" "$tmp/bk$n" "$tmp/r$n"
  "$bookd" --data-dir "$tmp/r$n" --listen "$http_b" --binary-listen "$bin_b" \
    --service-key "$key" >"$tmp/r$n.log" 2>&1 &
  pid_b=$!
  pid_save=$pid; pid=$pid_b
  if started_line "$tmp/r$n.log" >/dev/null; then
    ok "bookd starts on restore $n (no --accept-log-loss)"
    check "restore $n: nothing cut at start" bash -c "! grep -qi 'cut\\|corrupt' '$tmp/r$n.log'"
    check "restore $n: every booking acknowledged before backup $n began" \
      python3 "$tmp/check.py" "$http_b" "$key" 1 "$tmp/acked-before-$n"
    check "restore $n takes new bookings" \
      python3 "$tmp/load.py" "$http_b" "$key" 1 "after-restore-$n-" 20 "$tmp/new-$n"
    check "restore $n: the new bookings read back" \
      python3 "$tmp/check.py" "$http_b" "$key" 1 "$tmp/new-$n"
  else
    cat "$tmp/r$n.log"; bad "bookd starts on restore $n"
  fi
  stop_pid
  pid=$pid_save pid_b=
done

# ---- restore.sh refuses ----
check "restore.sh refuses a non-empty data dir" \
  bash -c "! bash '$scripts/restore.sh' '$tmp/bk1' '$tmp/r1' 2>/dev/null"
cp -r "$tmp/bk1" "$tmp/bk-bad"
seg=$(ls "$tmp/bk-bad"/*.wal | tail -1)
printf 'X' | dd of="$seg" bs=1 seek=200 conv=notrunc status=none
check "restore.sh refuses a backup whose bytes changed" \
  bash -c "! bash '$scripts/restore.sh' '$tmp/bk-bad' '$tmp/r-bad' 2>/dev/null"
check "backup.sh refuses an existing destination" \
  bash -c "! bash '$scripts/backup.sh' '$tmp/a' '$tmp/bk1' 2>/dev/null"

echo "test_backup: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
