#!/usr/bin/env python3
"""seed_backup.py: a generated backup of the seed's tables, as its
deployment guide's "Backup Current Data" step writes them (COPY ... CSV
HEADER), for `bookctl import seed` (docs/operations.md "Migrating from the
seed") and its tests.

    tests/seed_backup.py --out DIR [--instances N] [--registrations M]
                         [--seed S] [--now EPOCH_S] [--broken KIND]

Writes organizations.csv, locations.csv, instructors.csv, customers.csv,
class_series.csv, class_instances_backup.csv, registrations_backup.csv and
waitlists_backup.csv, and expected.json: what the import must report and
what the seed's Step 3 count checks must find in PostgreSQL after it.
Seeded: the same arguments give the same bytes. Instances run from 60 days
before --now to 60 days after; past ones have attended / no_show /
cancelled registrations, full future ones a waitlist (registrations
'waitlisted' with a waitlists row each, in position order), some
registrations came from the waitlist (a 'promoted' waitlists row), past
full ones some 'waitlisted' registrations the seed left open (imported as
waitlist_expired: expected.json's waitlist_expired), some
waitlist rows were left ('cancelled', no registration), 3% of instances
are cancelled (their registrations too) and 5% belong to no series
(one-off classes).

--broken makes one deliberate fault (all: each of them, in OUT/<kind>),
for the refusal tests: over_capacity
(a future class with one confirmed more than its capacity; line in
expected.json), duplicate (a customer twice confirmed on a class),
unknown_instance (a registration of a class not in the file),
missing_column (registrations without 'status'), bad_quote (a quoted
field never closed), bad_time (a created_at that is not a timestamp),
past_over_capacity (a past class over capacity: accepted by
--accept-past-conflicts).
"""
import argparse
import csv
import datetime as dt
import json
import os
import random
import uuid

ZONES = ["Europe/Zurich", "Europe/Berlin", "America/New_York", "UTC",
         "Asia/Tokyo"]
WD = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def ts(t):
    """A PostgreSQL timestamptz as COPY CSV writes it (UTC)."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S+00")


KINDS = ["over_capacity", "duplicate", "unknown_instance", "missing_column",
         "bad_quote", "bad_time", "past_over_capacity"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--registrations", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--now", type=int, default=None,
                    help="epoch seconds (default: now)")
    ap.add_argument("--broken", default=None)
    a = ap.parse_args()
    if a.broken == "all":  # each fault in OUT/<kind>, one process
        out = a.out
        for kind in KINDS:
            a.out, a.broken = os.path.join(out, kind), kind
            build(a)
    else:
        build(a)


def build(a):
    rng = random.Random(a.seed)
    now = a.now if a.now is not None else int(dt.datetime.now().timestamp())
    now -= now % 60

    def uid():
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    os.makedirs(a.out, exist_ok=True)
    n_org = max(1, min(5, a.instances // 20))
    orgs = [(uid(), "Studio %d" % (i + 1), rng.choice(ZONES))
            for i in range(n_org)]
    locs = [(uid(), o[0], "Room %d" % (k + 1)) for o in orgs
            for k in range(3)]
    inss = [(uid(), o[0], "Teacher %d" % (k + 1)) for o in orgs
            for k in range(4)]
    n_cust = max(50, a.registrations // 10)
    custs = [(uid(), "c%d@example.com" % i, "Customer %d" % i)
             for i in range(n_cust)]

    # series: weekly, 2 days a week; each gives instances every week
    n_series = max(1, a.instances // 40)
    series = []
    for i in range(n_series):
        o = rng.choice(orgs)
        days = sorted(rng.sample(range(7), 2))
        series.append({
            "id": uid(), "org": o, "tz": o[2],
            "loc": rng.choice([l for l in locs if l[1] == o[0]])[0],
            "ins": rng.choice([x for x in inss if x[1] == o[0]])[0],
            "title": "Class %d" % (i + 1),
            "capacity": rng.choice([10, 12, 15, 20, 25, 30]),
            "days": days, "minute": rng.choice([420, 600, 1080, 1170]),
            "duration": rng.choice([45, 60, 75, 90])})
    # instances: UTC start times spread over [now - 60 d, now + 60 d]
    instances = []
    span = 120 * 86400
    for i in range(a.instances):
        one_off = rng.random() < 0.05
        s = None if one_off else series[i % n_series]
        start = now - 60 * 86400 + rng.randrange(span // 60) * 60
        start -= start % 900
        if s:
            # on one of its weekdays (UTC weekday: close enough for data)
            d = dt.datetime.fromtimestamp(start, dt.timezone.utc)
            shift = (s["days"][i % 2] - d.weekday()) % 7
            start += shift * 86400
            start = start - start % 86400 + s["minute"] * 60
            o = s["org"]
            cap, dur = s["capacity"], s["duration"]
            loc, ins, title = s["loc"], s["ins"], s["title"]
        else:
            o = rng.choice(orgs)
            cap, dur = rng.choice([8, 10, 20]), 60
            loc = rng.choice([l for l in locs if l[1] == o[0]])[0]
            ins = rng.choice([x for x in inss if x[1] == o[0]])[0]
            title = "Workshop %d" % i
        instances.append({
            "id": uid(), "org": o[0], "series": s["id"] if s else "",
            "title": title, "loc": loc, "ins": ins, "start": start,
            "end": start + dur * 60, "capacity": cap,
            "status": "cancelled" if rng.random() < 0.03 else "scheduled",
            "created": start - 30 * 86400})
    # registrations: spread over the instances, customers unique per one
    regs, wls = [], []
    left = a.registrations
    order = list(range(len(instances)))
    per = [a.registrations // len(instances)] * len(instances)
    for k in range(a.registrations - sum(per)):
        per[k % len(per)] += 1
    for i in order:
        ins_ = instances[i]
        n = per[i]
        past = ins_["start"] < now
        who = rng.sample(range(n_cust), min(n, n_cust))
        taken, pos = 0, 0
        for k, c in enumerate(who):
            cid = custs[c][0]
            created = ins_["created"] + rng.randrange(20 * 86400)
            status = "confirmed"
            wl = None
            if ins_["status"] == "cancelled":
                status = "cancelled"
            elif rng.random() < 0.1:
                status = "cancelled"
            elif taken < ins_["capacity"]:
                taken += 1
                if past:
                    status = rng.choice(["attended"] * 8 + ["no_show"] +
                                        ["confirmed"])
                if rng.random() < 0.05:  # came from the waitlist
                    wl = ("promoted", created - 3600, created)
            elif past and rng.random() < 0.5:
                status = "cancelled"  # never got in
            else:  # (on a past class: left waiting, the seed never closed it)
                status = "waitlisted"
                pos += 1
                wl = ("waiting", created, None)
            rid = uid()
            regs.append([rid, ins_["id"], cid, status, ts(created),
                         ts(created + 60)])
            if wl:
                wls.append([uid(), ins_["id"], cid,
                            pos if wl[0] == "waiting" else "",
                            wl[0], ts(wl[1]),
                            ts(wl[2]) if wl[2] else ""])
        left -= n
        # a waitlist row left before it was served (no registration)
        if not past and ins_["status"] != "cancelled" and rng.random() < 0.2:
            c = rng.randrange(n_cust)
            if c not in who:
                wls.append([uid(), ins_["id"], custs[c][0], "",
                            "cancelled", ts(ins_["created"] + 3600), ""])
    assert left == 0
    broken_line = None

    def fault_row(status_ok=lambda r: True):
        for k, r in enumerate(regs):
            if status_ok(r):
                return k
        raise SystemExit("no row to break")

    by_id = {x["id"]: x for x in instances}
    if a.broken in ("over_capacity", "past_over_capacity"):
        want_past = a.broken == "past_over_capacity"
        for x in instances:
            if (x["start"] < now) != want_past or x["status"] != "scheduled":
                continue
            conf = [r for r in regs if r[1] == x["id"] and
                    r[3] in ("confirmed", "attended", "no_show")]
            if len(conf) < x["capacity"]:
                continue
            used = {r[2] for r in regs if r[1] == x["id"]}
            c = next(c[0] for c in custs if c[0] not in used)
            regs.append([uid(), x["id"], c, "confirmed",
                         ts(x["created"]), ts(x["created"])])
            broken_line = ("class_instances_backup.csv",
                           instances.index(x) + 2)
            break
        else:
            raise SystemExit("no full class to overfill")
    elif a.broken == "duplicate":
        k = fault_row(lambda r: r[3] == "confirmed" and
                      by_id[r[1]]["start"] >= now)
        r = regs[k]
        regs.append([uid(), r[1], r[2], "confirmed", r[4], r[5]])
        broken_line = ("registrations_backup.csv", len(regs) + 1)
    elif a.broken == "unknown_instance":
        r = regs[0]
        regs.append([uid(), uid(), r[2], "confirmed", r[4], r[5]])
        broken_line = ("registrations_backup.csv", len(regs) + 1)
    elif a.broken == "bad_time":
        regs[3][4] = "yesterday"
        broken_line = ("registrations_backup.csv", 5)
    elif a.broken not in (None, "missing_column", "bad_quote"):
        raise SystemExit("unknown --broken " + a.broken)

    def write(name, header, rows):
        with open(os.path.join(a.out, name), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write("organizations.csv", ["id", "name", "timezone"], orgs)
    write("locations.csv", ["id", "org_id", "name"], locs)
    write("instructors.csv", ["id", "org_id", "full_name"], inss)
    write("customers.csv", ["id", "email", "full_name"], custs)
    write("class_series.csv",
          ["id", "org_id", "location_id", "instructor_id", "title",
           "capacity", "timezone", "weekdays", "start_time",
           "duration_minutes", "created_at"],
          [[s["id"], s["org"][0], s["loc"], s["ins"], s["title"],
            s["capacity"], s["tz"], ",".join(WD[d] for d in s["days"]),
            "%02d:%02d" % divmod(s["minute"], 60), s["duration"],
            ts(now - 90 * 86400)] for s in series])
    write("class_instances_backup.csv",
          ["id", "org_id", "series_id", "title", "location_id",
           "instructor_id", "start_time", "end_time", "capacity", "status",
           "created_at", "updated_at"],
          [[x["id"], x["org"], x["series"], x["title"], x["loc"], x["ins"],
            ts(x["start"]), ts(x["end"]), x["capacity"], x["status"],
            ts(x["created"]), ts(x["created"])] for x in instances])
    reg_header = ["id", "class_instance_id", "customer_id", "status",
                  "created_at", "updated_at"]
    if a.broken == "missing_column":
        reg_header = [h for h in reg_header if h != "status"]
        regs = [r[:3] + r[4:] for r in regs]
        broken_line = ("registrations_backup.csv", 1)
    write("registrations_backup.csv", reg_header, regs)
    write("waitlists_backup.csv",
          ["id", "class_instance_id", "customer_id", "position", "status",
           "created_at", "promoted_at"], wls)
    if a.broken == "bad_quote":
        with open(os.path.join(a.out, "registrations_backup.csv"), "a") as f:
            f.write('"%s,unterminated\n' % uid())
        broken_line = ("registrations_backup.csv", len(regs) + 2)
    merged = sum(1 for w in wls if w[4] != "cancelled")
    one_off = sum(1 for x in instances if not x["series"])
    exp = {
        "instances": len(instances), "registrations": len(regs),
        "waitlist_rows": len(wls), "waitlist_rows_merged": merged,
        "series": len(series), "one_off": one_off,
        "customers": n_cust, "orgs": len(orgs),
        "class_series": len(series) + one_off,
        "class_events": len(instances),
        "bookings": len(regs) + len(wls) - merged,
        "waitlisted": sum(1 for r in regs if r[3] == "waitlisted" and
                          by_id[r[1]]["start"] >= now),
        "waitlist_expired": sum(1 for r in regs if r[3] == "waitlisted" and
                                by_id[r[1]]["start"] < now),
        "broken": list(broken_line) if broken_line else None,
    }
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


if __name__ == "__main__":
    main()
