#!/usr/bin/env python3
"""check.py: the chaos test's checker (tests/chaos/chaos.py runs it after
the last recovery, replication caught up and the sink drained;
docs/reliability.md "Chaos").

Reads the clients' histories (WORK/hist/*.jsonl, one line per attempt, the
format tests/chaos/chaos_client.c states), reads bookd back through its
HTTP API (every booking of the test's events, by id: an event's bookings
are numbered from event_id << 24 up), PostgreSQL (psql) and the webhook
sink's receipts (WORK/sink/webhook.jsonl), and checks:

  lost       every acknowledged booking is in bookd, same event and
             customer; every acknowledged cancel's booking is cancelled;
             every promotion answered is a booking that left the waitlist
  replay     the answers under one idempotency key name one booking
  once       per event and customer, no more bookings than keys that were
             acknowledged or left without an answer (an unanswered request
             may be there or not, but once at most); no cancelled booking
             without a cancel request for it
  capacity   per event, confirmed bookings <= capacity and = the event's
             booked count, in bookd and in PostgreSQL; no one waiting while
             a seat is free
  fifo       per event, no booking still waiting that joined before one
             promoted (bookd and PostgreSQL's event_waitlists), and
             promotions in PostgreSQL in the order of joining
  pg         PostgreSQL holds each of bookd's bookings exactly once, with
             its status, and none that bookd does not hold; the events'
             counters equal bookd's
  notify     every notification in PostgreSQL was delivered to the sink
             (200) at least once, under one id that always named the same
             booking and kind; none delivered that PostgreSQL lacks; every
             acknowledged confirmation, cancel and promotion has its
             notification; signatures valid; no dead letter

Prints the counts and each violation (with the history lines involved);
exit 0 when there is none.

  check.py --work DIR --http HOST:PORT --key SVC --db DATABASE_URL
"""
import argparse
import collections
import glob
import http.client
import json
import os
import subprocess
import sys

ACTIVE = ("confirmed", "pending_payment", "waitlisted")


class Checker:
    def __init__(self, a):
        self.a = a
        self.viol = collections.Counter()
        self.shown = collections.Counter()
        self.lost = 0
        self.over = 0
        host, port = a.http.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def bad(self, kind, msg, lines=()):
        self.viol[kind] += 1
        if self.shown[kind] < 10:
            self.shown[kind] += 1
            print("VIOLATION %s: %s" % (kind, msg))
            for ln in lines:
                print("    " + json.dumps(ln, sort_keys=True))

    def get(self, path):
        self.conn.request("GET", path, None,
                          {"Authorization": "Bearer " + self.a.key})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

    def sql(self, q):
        r = subprocess.run(["psql", self.a.db, "-X", "-q", "-A", "-t", "-F",
                            "\t", "-v", "ON_ERROR_STOP=1", "-c", q],
                           capture_output=True, text=True,
                           env=dict(os.environ,
                                    PGOPTIONS="--client-min-messages=warning"))
        if r.returncode:
            raise RuntimeError("psql: " + r.stderr)
        return [ln.split("\t") for ln in r.stdout.splitlines() if ln]

    # ---- the histories ----

    def read_histories(self):
        self.attempts = []
        for f in sorted(glob.glob(os.path.join(self.a.work, "hist",
                                               "*.jsonl"))):
            for ln in open(f):
                ln = ln.strip()
                if ln:
                    self.attempts.append(json.loads(ln))
        self.keys = collections.OrderedDict()
        for at in self.attempts:
            self.keys.setdefault(at["key"], []).append(at)
        self.outcome = {}
        for k, ats in self.keys.items():
            oks = [x for x in ats if x["res"] == "ok"]
            if oks:
                self.outcome[k] = "ok"
                if len({x["bid"] for x in oks}) != 1:
                    self.bad("replay", "key %s answered with different "
                             "bookings" % k, oks)
                if ats[0]["op"] == "cancel":
                    proms = {x.get("prom", 0) for x in oks}
                    if len(proms) != 1:
                        self.bad("replay", "key %s: cancel answered with "
                                 "different promotions" % k, oks)
            elif any(x["res"] == "refused" for x in ats):
                self.outcome[k] = "refused"
            else:
                self.outcome[k] = "unknown"

    # ---- bookd, read back ----

    def read_bookd(self):
        cat = json.load(open(os.path.join(self.a.work, "catalog.json")))
        self.events = cat["events"]
        self.ev = {}
        for e in self.events:
            st, b = self.get("/v1/events/%d" % e)
            if st != 200:
                raise RuntimeError("event %d: %s %s" % (e, st, b))
            self.ev[e] = b["event"]
        # each event's bookings from 1 up, past the highest PostgreSQL
        # holds, until 32 in a row are missing; then any other the
        # histories name
        known = collections.defaultdict(int)
        for r in self.sql("SELECT id FROM registrations"):
            i = int(r[0])
            known[i >> 24] = max(known[i >> 24], i & 0xFFFFFF)
        self.bk = {}
        for e in self.events:
            seq, misses = 1, 0
            while seq <= known[e] or misses < 32:
                misses = 0 if self.read_booking((e << 24) | seq) else \
                    misses + 1
                seq += 1
        named = {at[f] for at in self.attempts
                 for f in ("bid", "target", "prom") if at.get(f)}
        for bid in sorted(named - set(self.bk)):
            self.read_booking(bid)

    def read_booking(self, bid):
        st, b = self.get("/v1/bookings/%d" % bid)
        if st == 200:
            self.bk[bid] = b["booking"]
            return True
        if st != 404:
            raise RuntimeError("booking %d: %s %s" % (bid, st, b))
        return False

    def read_pg(self):
        evs = ",".join(map(str, self.events))
        self.pg_reg = collections.defaultdict(list)
        for i, e, c, s in self.sql(
                "SELECT id, event_id, customer_id, status FROM registrations"
                " WHERE event_id IN (%s)" % evs):
            self.pg_reg[int(i)].append(dict(event_id=int(e), customer=c,
                                            status=s))
        self.pg_ev = {}
        for i, cap, reg, held, wl, st in self.sql(
                "SELECT id, capacity, reg_count, held_count, waitlist_count,"
                " status FROM class_events WHERE id IN (%s)" % evs):
            self.pg_ev[int(i)] = dict(capacity=int(cap), reg=int(reg),
                                      held=int(held), wl=int(wl), status=st)
        self.pg_wl = collections.defaultdict(list)
        for b, e, pos, pr, left in self.sql(
                "SELECT booking_id, event_id, position,"
                " extract(epoch from promoted_at)::text,"
                " extract(epoch from left_at)::text"
                " FROM event_waitlists WHERE event_id IN (%s)" % evs):
            self.pg_wl[int(e)].append(dict(
                bid=int(b), pos=int(pos),
                promoted=float(pr) if pr else None,
                left=float(left) if left else None))
        self.pg_notes = {}
        for i, kind, b in self.sql(
                "SELECT id, kind, coalesce(booking_id, 0) FROM notifications"):
            self.pg_notes[i] = (kind, int(b))

    # ---- the properties ----

    def check_lost(self):
        for k, ats in self.keys.items():
            if self.outcome[k] != "ok":
                continue
            ok = next(x for x in ats if x["res"] == "ok")
            if ok["op"] == "book":
                b = self.bk.get(ok["bid"])
                if (not b or int(b["event_id"]) != ok["ev"]
                        or b["customer_id"] != ok["cust"]):
                    self.lost += 1
                    self.bad("lost", "acknowledged booking %d not in bookd "
                             "as answered (bookd: %s)" % (ok["bid"], b), [ok])
            else:
                b = self.bk.get(ok["target"])
                if not b or b["status"] != "cancelled":
                    self.lost += 1
                    self.bad("lost", "acknowledged cancel of %d, bookd "
                             "says %s" % (ok["target"], b and b["status"]),
                             [ok])
                p = ok.get("prom", 0)
                if p:
                    pb = self.bk.get(p)
                    if not pb or pb["status"] == "waitlisted":
                        self.lost += 1
                        self.bad("lost", "promotion of %d answered, bookd "
                                 "says %s" % (p, pb and pb["status"]), [ok])

    def check_once(self):
        # bookings per (event, customer) against the keys that may explain
        # them; cancels against the requests for them
        allowed = collections.Counter()
        cancel_asked = set()
        for k, ats in self.keys.items():
            a0 = ats[0]
            if a0["op"] == "book" and self.outcome[k] != "refused":
                allowed[(a0["ev"], a0["cust"])] += 1
            if a0["op"] == "cancel" and self.outcome[k] != "refused":
                cancel_asked.add(a0["target"])
        have = collections.Counter()
        for bid, b in self.bk.items():
            have[(int(b["event_id"]), b["customer_id"])] += 1
            if b["status"] == "cancelled" and bid not in cancel_asked:
                self.bad("once", "booking %d cancelled, nobody asked" % bid)
        for pair, n in have.items():
            if n > allowed[pair]:
                self.bad("once", "event %d, customer %s: %d bookings, %d "
                         "keys that could have made them" %
                         (pair[0], pair[1], n, allowed[pair]),
                         [x[0] for x in self.keys.values()
                          if x[0]["op"] == "book" and
                          (x[0]["ev"], x[0]["cust"]) == pair][:6])

    def check_capacity(self):
        per = collections.defaultdict(collections.Counter)
        for b in self.bk.values():
            per[int(b["event_id"])][b["status"]] += 1
        for e in self.events:
            ev, c = self.ev[e], per[e]
            cap = ev["capacity"]
            taken = c["confirmed"] + c["pending_payment"]
            if taken > cap:
                self.over += 1
                self.bad("capacity", "event %d: %d seats taken of %d" %
                         (e, taken, cap))
            if c["confirmed"] != ev["booked"] or c["waitlisted"] != \
                    ev["waitlist_length"]:
                self.bad("capacity", "event %d: bookings say %d confirmed, "
                         "%d waiting; the event %d, %d" %
                         (e, c["confirmed"], c["waitlisted"], ev["booked"],
                          ev["waitlist_length"]))
            if c["waitlisted"] and taken < cap:
                self.bad("capacity", "event %d: %d waiting, %d of %d seats "
                         "taken" % (e, c["waitlisted"], taken, cap))
            pg = self.pg_ev.get(e)
            pgc = collections.Counter(
                r[0]["status"] for bid, r in self.pg_reg.items()
                if r[0]["event_id"] == e)
            if not pg:
                self.bad("pg", "event %d not in class_events" % e)
                continue
            if pgc["confirmed"] + pgc["pending_payment"] > pg["capacity"]:
                self.over += 1
                self.bad("capacity", "PostgreSQL: event %d overbooked" % e)
            if (pg["reg"], pg["wl"]) != (pgc["confirmed"], pgc["waitlisted"]):
                self.bad("pg", "class_events %d counts %s, registrations %s"
                         % (e, pg, dict(pgc)))

    def check_fifo(self):
        for e in self.events:
            rows = sorted(self.pg_wl[e], key=lambda r: r["pos"])
            waiting = [r for r in rows if r["promoted"] is None
                       and r["left"] is None]
            promoted = [r for r in rows if r["promoted"] is not None]
            if waiting and promoted and promoted[-1]["pos"] > waiting[0]["pos"]:
                self.bad("fifo", "event %d: %d promoted while %d, who "
                         "joined before, waits" %
                         (e, promoted[-1]["bid"], waiting[0]["bid"]))
            for x, y in zip(promoted, promoted[1:]):
                if y["promoted"] < x["promoted"]:
                    self.bad("fifo", "event %d: %d (place %d) promoted "
                             "before %d (place %d)" %
                             (e, y["bid"], y["pos"], x["bid"], x["pos"]))
            # bookd: those waiting now against those who left the waitlist
            # for a seat (in PostgreSQL's rows, or answered as waiting)
            was_waiting = {r["bid"] for r in rows}
            for at in self.attempts:
                if at.get("st") == "waitlisted" and at["ev"] == e:
                    was_waiting.add(at["bid"])
            now_waiting = sorted(b for b in was_waiting
                                 if self.bk.get(b, {}).get("status") ==
                                 "waitlisted")
            seated = [b for b in was_waiting
                      if self.bk.get(b, {}).get("status") == "confirmed"]
            if now_waiting and seated and max(seated) > now_waiting[0]:
                self.bad("fifo", "event %d: %d seated from the waitlist "
                         "while %d, who joined before, waits" %
                         (e, max(seated), now_waiting[0]))

    def check_pg(self):
        for bid, rows in self.pg_reg.items():
            if len(rows) != 1:
                self.bad("pg", "registration %d: %d rows" % (bid, len(rows)))
            if bid not in self.bk:
                self.bad("pg", "registration %d not in bookd" % bid)
        for bid, b in self.bk.items():
            rows = self.pg_reg.get(bid)
            if not rows:
                self.bad("pg", "booking %d (%s) not in PostgreSQL" %
                         (bid, b["status"]))
            elif rows[0]["status"] != b["status"] or \
                    rows[0]["customer"] != b["customer_id"]:
                self.bad("pg", "booking %d: bookd %s %s, PostgreSQL %s" %
                         (bid, b["customer_id"], b["status"], rows[0]))

    def check_notify(self):
        path = os.path.join(self.a.work, "sink", "webhook.jsonl")
        hooks = [json.loads(ln) for ln in open(path)] if \
            os.path.exists(path) else []
        self.hooks = hooks
        seen = {}
        delivered = collections.Counter()
        for h in hooks:
            if not h["sig_ok"] or not h["id_matches"]:
                self.bad("notify", "bad signature or id %s" % h["id"])
            d = h["body"] or {}
            what = (d.get("type"), int(d.get("data", {}).get("booking_id")
                                       or 0))
            if seen.setdefault(h["id"], what) != what:
                self.bad("notify", "id %s named %s, then %s" %
                         (h["id"], seen[h["id"]], what))
            if h["status"] == 200:
                delivered[h["id"]] += 1
        self.delivered = delivered
        ids_of = collections.defaultdict(set)
        for i, what in seen.items():
            ids_of[what].add(i)
        for what, ids in ids_of.items():
            if len(ids) > 1:
                self.bad("notify", "%s sent under %d ids: %s" %
                         (what, len(ids), sorted(ids)))
        for i, (kind, bid) in self.pg_notes.items():
            if not delivered[i]:
                self.bad("notify", "notification %s (%s of %d) never "
                         "delivered" % (i, kind, bid))
            elif seen[i] != (kind, bid):
                self.bad("notify", "notification %s: PostgreSQL %s, sink "
                         "%s" % (i, (kind, bid), seen[i]))
        for i in delivered:
            if i not in self.pg_notes:
                self.bad("notify", "delivered %s, not in PostgreSQL" % i)
        have = {v for v in self.pg_notes.values()}
        for k, ats in self.keys.items():
            if self.outcome[k] != "ok":
                continue
            ok = next(x for x in ats if x["res"] == "ok")
            want = []
            if ok["op"] == "book" and ok["st"] == "confirmed":
                want.append(("booking_confirmed", ok["bid"]))
            if ok["op"] == "cancel":
                want.append(("cancelled", ok["target"]))
                if ok.get("prom"):
                    want.append(("promoted", ok["prom"]))
            for w in want:
                if w not in have:
                    self.bad("notify", "no %s notification for %d" % w,
                             [ok])
        dead = os.path.join(self.a.work, "disk", "data", "notify-dead.jsonl")
        if os.path.exists(dead) and os.path.getsize(dead):
            self.bad("notify", "dead letters in notify-dead.jsonl")

    def run(self):
        self.read_histories()
        self.read_bookd()
        self.read_pg()
        self.check_lost()
        self.check_once()
        self.check_capacity()
        self.check_fifo()
        self.check_pg()
        self.check_notify()
        out = collections.Counter(
            (ats[0]["op"], self.outcome[k]) for k, ats in self.keys.items())
        faults = collections.Counter()
        fp = os.path.join(self.a.work, "faults.jsonl")
        if os.path.exists(fp):
            for ln in open(fp):
                faults[json.loads(ln)["kind"]] += 1
        retried = sum(1 for ats in self.keys.values() if len(ats) > 1)
        noans = collections.Counter(x["code"] for x in self.attempts
                                    if x["res"] == "unknown")
        print("check: %d requests sent (%d idempotency keys, %d sent more "
              "than once); %d without an answer (%s)" %
              (len(self.attempts), len(self.keys), retried,
               sum(noans.values()), ", ".join("%s %d" % kv for kv in
                                              sorted(noans.items()))))
        for op in ("book", "cancel"):
            print("check: %s: %d acknowledged and checked, %d refused, %d "
                  "never answered" % (op, out[(op, "ok")],
                                         out[(op, "refused")],
                                         out[(op, "unknown")]))
        st = collections.Counter(b["status"] for b in self.bk.values())
        print("check: bookd holds %d bookings (%s); PostgreSQL %d "
              "registrations; %d notifications, %d delivered (%d "
              "deliveries)" %
              (len(self.bk), ", ".join("%s %d" % kv for kv in
                                       sorted(st.items())),
               len(self.pg_reg), len(self.pg_notes), len(self.delivered),
               sum(self.delivered.values())))
        print("check: faults: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(faults.items())))
        print("check: data lost %d, overbookings %d, violations %d%s" %
              (self.lost, self.over, sum(self.viol.values()),
               "" if not self.viol else " (" + ", ".join(
                   "%s %d" % kv for kv in sorted(self.viol.items())) + ")"))
        return 0 if not self.viol else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--http", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--db", required=True)
    return Checker(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
