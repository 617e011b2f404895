#!/usr/bin/env python3
"""soak_watch.py: the sampler and the judge of bench/soak.sh.

  soak_watch.py sample --pid P --base URL --out FILE
                       [--interval S] [--stop FILE]
      every S seconds (10) until bookd P exits or the stop file exists:
      one line of FILE (tab-separated, a header first) with bookd's
      resident memory and open fds (/proc/P/status, /proc/P/fd) and from
      its /metrics: requests and decisions so far, the interval's p99 and
      request count (bookd_request_duration_seconds, every op and
      protocol, the difference of the cumulative buckets since the last
      sample: p99 is the upper bound of the bucket holding it),
      replication lag (records, seconds), the notification backlog and
      notifications delivered.
  soak_watch.py judge --samples FILE --seconds S [--warmup W]
                      [--window L] [--bytes-per-decision B] [--rules 0|1]
      prints the samples as a table and the rules' verdicts, PASS or FAIL
      (exit 0 or 1). t counts from the load's start.

Why the memory rule is not "RSS equal": bookd keeps every idempotency key
24 hours (the shortest --idempotency-hours) and every booking until its
event is archived (docs/operations.md, Memory and limits), so an hour of
decisions grows the tables by design. The rule asks that the growth from
the window after warm-up to the last window be no more than those
decisions' documented cost (-bytes-per-decision, default 530: a key at
most 350 B, a booking at most 180 B, as if every decision made both) plus
5 %: a leak or an unbounded queue shows as growth beyond what was decided.
The other rules: the fewest open fds in the last window at most 4 above
the fewest in the first (the floor: connections to the webhook sink come
and go, a leaked fd raises the floor); the median of the last window's
10 s p99s at most twice the first window's (floor 2 ms, under which a
doubling is a bucket or two of noise); replication lag and the
notification backlog in the last window no higher than twice the first
window's highest (floors 5 s and 1000 notifications). soak.sh adds that
both drain to 0 after the load and that bookd exits 0 on SIGTERM.
"""
import argparse
import os
import statistics
import sys
import time
import urllib.request

FIELDS = ["t", "rss_kb", "fds", "requests", "decisions", "interval_requests",
          "p99_ms", "lag_records", "lag_s", "backlog", "delivered"]
DECISION_OPS = ("book", "cancel", "waitlist_join", "event_patch", "payment")


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            name, _, rest = head.partition("{")
            labels = []
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, _, v = part.partition("=")
                    labels.append((k, v.strip('"')))
            key = (name, frozenset(labels))
        else:
            key = (head, frozenset())
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(m, name, pred=lambda labels: True):
    return sum(v for (n, labels), v in m.items()
               if n == name and pred(dict(labels)))


def buckets(m):
    """{le: cumulative count} of every request histogram series summed."""
    out = {}
    for (n, labels), v in m.items():
        if n != "bookd_request_duration_seconds_bucket":
            continue
        le = dict(labels)["le"]
        le = float("inf") if le == "+Inf" else float(le)
        out[le] = out.get(le, 0) + v
    return out


def p99_of(diff):
    """The upper bound (ms) of the bucket holding the 99th percentile of a
    {le: cumulative count} histogram; None when it is empty."""
    if not diff:
        return None
    total = diff[max(diff)]
    if total <= 0:
        return None
    for le in sorted(diff):
        if diff[le] >= 0.99 * total:
            return le * 1000
    return None


def proc_sample(pid):
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def sample(args):
    start = time.monotonic()
    last = None
    with open(args.out, "w") as out:
        out.write("\t".join(FIELDS) + "\n")
        out.flush()
        while True:
            time.sleep(args.interval)
            if args.stop and os.path.exists(args.stop):
                return 0
            try:
                rss, fds = proc_sample(args.pid)
                req = urllib.request.Request(args.base + "/metrics")
                with urllib.request.urlopen(req, timeout=5) as r:
                    m = parse_metrics(r.read().decode())
            except (OSError, ValueError) as e:
                if not os.path.exists(f"/proc/{args.pid}"):
                    return 0
                print(f"soak_watch: sample failed: {e}", file=sys.stderr)
                continue
            b = buckets(m)
            diff = {le: c - (last or {}).get(le, 0) for le, c in b.items()}
            last = b
            p99 = p99_of(diff)
            row = {
                "t": round(time.monotonic() - start),
                "rss_kb": rss,
                "fds": fds,
                "requests": int(metric_sum(m, "bookd_requests_total")),
                "decisions": int(metric_sum(
                    m, "bookd_operations_total",
                    lambda l: l.get("op") in DECISION_OPS)),
                "interval_requests": int(diff.get(float("inf"), 0)),
                "p99_ms": "-" if p99 is None else f"{p99:g}",
                "lag_records": int(metric_sum(
                    m, "bookd_replication_lag_records")),
                "lag_s": f"{metric_sum(m, 'bookd_replication_lag_seconds'):g}",
                "backlog": int(metric_sum(m, "bookd_notifications_backlog")),
                "delivered": int(metric_sum(
                    m, "bookd_notifications_delivered_total")),
            }
            out.write("\t".join(str(row[k]) for k in FIELDS) + "\n")
            out.flush()


def judge(args):
    rows = []
    with open(args.samples) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    if not rows:
        print("soak: no samples")
        return 1
    print("    t(s)   RSS(MiB)  fds  requests/s  p99(ms)  lag(rec)  "
          "lag(s)  backlog  delivered")
    prev = None
    for r in rows:
        rate = "-"
        if prev is not None:
            dt = int(r["t"]) - int(prev["t"])
            if dt > 0:
                rate = f"{(int(r['requests']) - int(prev['requests'])) / dt:.0f}"
        print(f"{int(r['t']):8d} {int(r['rss_kb']) / 1024:10.1f} "
              f"{int(r['fds']):4d} {rate:>11} {r['p99_ms']:>8} "
              f"{int(r['lag_records']):9d} {r['lag_s']:>7} "
              f"{int(r['backlog']):8d} {int(r['delivered']):10d}")
        prev = r
    if not args.rules:
        print("soak: rules not applied (a short run: --rules 0)")
        return 0

    seconds, warm = args.seconds, args.warmup
    window = args.window or min(600, (seconds - warm) / 3)
    early = [r for r in rows if warm <= int(r["t"]) < warm + window]
    late = [r for r in rows if seconds - window <= int(r["t"]) <= seconds]
    if len(early) < 2 or len(late) < 2 or warm + window > seconds - window:
        print(f"soak: FAIL: too few samples for windows of {window:g} s "
              f"after {warm:g} s of warm-up in {seconds:g} s")
        return 1
    print(f"soak: warm-up {warm:g} s; first window {warm:g}-{warm + window:g}"
          f" s ({len(early)} samples), last window {seconds - window:g}-"
          f"{seconds:g} s ({len(late)} samples)")
    failed = 0

    def verdict(ok, text):
        nonlocal failed
        print(f"soak: {'ok  ' if ok else 'FAIL'} {text}")
        failed += not ok

    def med(rs, k):
        return statistics.median(float(r[k]) for r in rs)

    rss_e, rss_l = med(early, "rss_kb") * 1024, med(late, "rss_kb") * 1024
    dec = med(late, "decisions") - med(early, "decisions")
    allowed = dec * args.bytes_per_decision + 0.05 * rss_e
    per = (rss_l - rss_e) / dec if dec > 0 else 0
    verdict(rss_l - rss_e <= allowed,
            f"RSS: median {rss_e / 2**20:.1f} MiB in the first window, "
            f"{rss_l / 2**20:.1f} MiB in the last: {per:.0f} B per decision "
            f"over {dec:.0f} decisions (allowed {args.bytes_per_decision} B "
            f"each + 5 %: {allowed / 2**20:.1f} MiB)")
    fd_e = min(int(r["fds"]) for r in early)
    fd_l = min(int(r["fds"]) for r in late)
    fd_hi = max(int(r["fds"]) for r in early + late)
    verdict(fd_l - fd_e <= 4,
            f"fds: lowest {fd_e} in the first window, {fd_l} in the last "
            f"(allowed +4); highest {fd_hi}")

    def window_p99(rs):
        vals = [float(r["p99_ms"]) for r in rs if r["p99_ms"] != "-"]
        return max(vals) if vals else None, \
            statistics.median(vals) if vals else None

    e_max, e_med = window_p99(early)
    l_max, l_med = window_p99(late)
    if e_med is None or l_med is None:
        verdict(False, "p99: no requests in a window")
    else:
        verdict(l_med <= max(2 * e_med, 2.0),
                f"p99: median of the 10 s p99s {e_med:g} ms in the first "
                f"window, {l_med:g} ms in the last (allowed 2x, floor 2 ms);"
                f" worst 10 s: {e_max:g} and {l_max:g} ms")
    lag_e = max(float(r["lag_s"]) for r in early)
    lag_l = max(float(r["lag_s"]) for r in late)
    verdict(lag_l <= max(2 * lag_e, 5.0),
            f"replication lag: at most {lag_e:g} s in the first window, "
            f"{lag_l:g} s in the last (allowed 2x, floor 5 s)")
    bl_e = max(int(r["backlog"]) for r in early)
    bl_l = max(int(r["backlog"]) for r in late)
    verdict(bl_l <= max(2 * bl_e, 1000),
            f"notification backlog: at most {bl_e} in the first window, "
            f"{bl_l} in the last (allowed 2x, floor 1000)")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--base", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=10)
    s.add_argument("--stop")
    j = sub.add_parser("judge")
    j.add_argument("--samples", required=True)
    j.add_argument("--seconds", type=float, required=True)
    j.add_argument("--warmup", type=float, default=300)
    j.add_argument("--window", type=float, default=0)
    j.add_argument("--bytes-per-decision", type=int, default=530)
    j.add_argument("--rules", type=int, default=1)
    args = ap.parse_args()
    return sample(args) if args.cmd == "sample" else judge(args)


if __name__ == "__main__":
    sys.exit(main())
