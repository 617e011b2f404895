#!/usr/bin/env python3
"""chaos.py: the chaos test's conductor (tests/chaos/run.sh starts it;
docs/reliability.md "Chaos" says what it proves and its limits).

It runs, all on 127.0.0.1 and unix sockets, in a fresh work directory:
  - a throwaway PostgreSQL (scripts/pg.sh: its own cluster, so that it can
    be stopped and started again),
  - the webhook sink (tests/integration/notify_sink.py),
  - bookd on fixed ports with its data directory on a small tmpfs mount
    (when mounting is possible: root), replicating into PostgreSQL and
    delivering notifications to the sink, with 128 KiB log segments
    (BOOKD_TEST_SEGMENT_BYTES) and frequent snapshots, so that a full disk
    is met within seconds,
  - clients that each keep a history of every request and its answer (or
    none): chaos_client (the binary protocol, api/client/) processes and
    HTTP clients (threads here, http.client), booking, cancelling, joining
    waitlists on small events, retrying under the same idempotency key;
and meanwhile injects faults at seeded random moments:
  kill9    bookd killed (SIGKILL) and started again on the same data dir
  stop     bookd stopped (SIGSTOP) for 0.5-4 s, then continued (the
           clients time out after 1.5 s)
  pg       PostgreSQL stopped (fast or immediate) for 1-5 s, then started
  disk     the tmpfs filled with a file for 2-8 s, then the file deleted
           (a segment lasts about 4 s of the load: the log's next one
           cannot be prepared, then the current one fills);
           if the log failed meanwhile (/ready 503), bookd is restarted
           (the log never retries a failed write: docs/operations.md)
  sink     the webhook answering 503 (the sink's fail file), or the sink
           down, for 1-6 s
At the end the sink is healthy, bookd is killed once more and started (the
last recovery), replication and delivery are waited for, and check.py
reads the histories against bookd, PostgreSQL and the sink. The short
profile then checks the checker: over forged copies of the histories (an
acknowledged booking bookd lacks, one key answered with two bookings, a
booking no request asked for) it must report each. Everything
started is stopped on the way out, also on Ctrl-C (SIGINT) and SIGTERM.

  chaos.py --build DIR [--profile short|long] [--seed N] [--seconds N]
           [--faults kill9,stop,pg,disk,sink] [--keep]
"""
import argparse
import glob
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

PROFILES = {
    # seconds of load, binary clients, HTTP clients, events, capacity,
    # waitlist, seconds between faults (min, max), tmpfs MiB
    "short": dict(seconds=75, bin=3, http=2, events=6, cap=3, wl=3,
                  gap=(2.0, 5.0), disk_mb=24),
    "long": dict(seconds=1500, bin=4, http=3, events=16, cap=3, wl=4,
                 gap=(4.0, 12.0), disk_mb=128),
}


# refusals that decide nothing: the request is sent again under its key
# (chaos_client.c's undecided())
UNDECIDED = ("unavailable", "overloaded", "internal",
             "idempotency_key_in_flight", "rate_limited")


def log(*a):
    print("chaos:", *a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def as_postgres(cmd):
    if os.getuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class Chaos:
    def __init__(self, a):
        self.a = a
        self.p = dict(PROFILES[a.profile])
        if a.seconds:
            self.p["seconds"] = a.seconds
        self.rnd = random.Random(a.seed)
        self.work = tempfile.mkdtemp(prefix="bookd-chaos.")
        self.disk = os.path.join(self.work, "disk")
        self.data = os.path.join(self.disk, "data")
        self.hist = os.path.join(self.work, "hist")
        self.sink_dir = os.path.join(self.work, "sink")
        os.makedirs(self.disk)
        os.makedirs(self.hist)
        self.mounted = False
        self.pg_dir = None
        self.db_url = None
        self.bookd = None
        self.bookd_starts = 0
        self.sink = None
        self.clients = []
        self.threads = []
        self.stopping = threading.Event()
        self.svc = "svc-chaos-%d" % self.rnd.randrange(1 << 40)
        self.http_port = free_port()
        self.bin_port = free_port()
        self.sink_port = free_port()
        self.faults = open(os.path.join(self.work, "faults.jsonl"), "a")
        self.counts = {}
        self.unexpected = []

    # ---- services ----

    def mount(self):
        if os.getuid() != 0:
            log("notice: not root, no tmpfs: the disk fault is skipped")
            return
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%dm" % self.p["disk_mb"], "bookd-chaos",
                            self.disk], capture_output=True, text=True)
        if r.returncode:
            log("notice: cannot mount a tmpfs (%s): the disk fault is "
                "skipped" % r.stderr.strip())
            return
        self.mounted = True

    def pg_start_cluster(self):
        # the cluster's directory inside the work dir (TMPDIR), where the
        # cleanup finds it even when pg.sh was interrupted
        os.chmod(self.work, 0o755)
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"),
                            "start"], capture_output=True, text=True,
                           env=dict(os.environ, TMPDIR=self.work))
        if r.returncode:
            raise RuntimeError("pg.sh start: " + r.stderr)
        for line in r.stdout.splitlines():
            k, _, v = line.replace("export ", "").partition("=")
            v = v.strip("'")
            if k == "BOOKD_PG_DIR":
                self.pg_dir = v
            elif k == "DATABASE_URL":
                self.db_url = v
        self.pg_opts = open(os.path.join(self.pg_dir, "data",
                                         "postmaster.opts")).read()

    def pg_ctl(self, *args):
        return subprocess.run(as_postgres(
            [PG_BIN + "/pg_ctl", "-D", os.path.join(self.pg_dir, "data"),
             "-w", "-t", "60"] + list(args)),
            capture_output=True, text=True)

    def pg_stop(self, mode):
        r = self.pg_ctl("-m", mode, "stop")
        if r.returncode:
            self.unexpected.append("pg_ctl stop: " + r.stderr.strip())

    def pg_up(self):
        # the same options as pg.sh started it with (postmaster.opts)
        opts = self.pg_opts.split(None, 1)[1].strip()
        r = self.pg_ctl("-l", os.path.join(self.pg_dir, "server.log"),
                        "-o", opts.replace('"', ""), "start")
        if r.returncode:
            raise RuntimeError("PostgreSQL did not start again: " +
                               r.stdout + r.stderr)

    def sink_start(self):
        self.sink_log = open(os.path.join(self.work, "sink.log"), "a")
        self.sink = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests/integration",
                                          "notify_sink.py"),
             "--out", self.sink_dir, "--secret", SECRET,
             "--http-port", str(self.sink_port)],
            stdout=self.sink_log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.sink_port),
                                         0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the sink did not start")

    def sink_stop(self):
        if self.sink and self.sink.poll() is None:
            self.sink.terminate()
            self.sink.wait(10)
        self.sink = None

    def bookd_env(self):
        e = dict(os.environ)
        e.update({
            "BOOKD_SERVICE_KEY": self.svc,
            "BOOKD_LISTEN": "127.0.0.1:%d" % self.http_port,
            "BOOKD_BINARY_LISTEN": "127.0.0.1:%d" % self.bin_port,
            "BOOKD_DATA_DIR": self.data,
            "DATABASE_URL": self.db_url,
            "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:%d/hooks/bookd"
                                  % self.sink_port,
            "NOTIFY_WEBHOOK_SECRET": SECRET,
            "BOOKD_NOTIFY_BACKOFF_MS": "50",
            "BOOKD_NOTIFY_BACKOFF_MAX_MS": "1000",
            # no dead letter: 1000 attempts, 1 s apart at most, outlast
            # any sink fault here (6 s at most)
            "BOOKD_NOTIFY_MAX_ATTEMPTS": "1000",
            "BOOKD_CUSTOMER_RATE": "0",
            "BOOKD_ADDRESS_RATE": "0",
            "BOOKD_TEST_SEGMENT_BYTES": "131072",
            "BOOKD_SNAPSHOT_EVERY": "3000",
            "BOOKD_REMINDER_HOURS": "off",
        })
        return e

    def bookd_start(self):
        self.bookd_log = open(os.path.join(self.work, "bookd.log"), "a")
        for attempt in range(20):
            self.bookd_log.write("--- chaos: bookd start\n")
            self.bookd_log.flush()
            self.bookd = subprocess.Popen(
                [self.a.bookd], env=self.bookd_env(),
                stdout=self.bookd_log, stderr=subprocess.STDOUT)
            self.bookd_starts += 1
            deadline = time.time() + 60
            while time.time() < deadline:
                if self.bookd.poll() is not None:
                    break
                if self.health():
                    return
                time.sleep(0.05)
            rc = self.bookd.poll()
            if rc == 2:
                raise RuntimeError("bookd refuses its configuration: see "
                                   "%s/bookd.log" % self.work)
            if rc is None:
                self.bookd.kill()
                self.bookd.wait()
            # a port still held by the killed process: again, shortly
            self.unexpected.append("bookd start %d failed (exit %s)" %
                                   (self.bookd_starts, rc))
            time.sleep(0.5)
        raise RuntimeError("bookd does not start: see %s/bookd.log" %
                           self.work)

    def health(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                           timeout=2)
            c.request("GET", "/health")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def api(self, method, path, body=None, key=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                       timeout=timeout)
        h = {"Authorization": "Bearer " + self.svc}
        if body is not None:
            h["Content-Type"] = "application/json"
        if key:
            h["Idempotency-Key"] = key
        c.request(method, path, json.dumps(body) if body is not None
                  else None, h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def bookd_kill(self, sig=signal.SIGKILL):
        if self.bookd and self.bookd.poll() is None:
            os.kill(self.bookd.pid, signal.SIGCONT)
            os.kill(self.bookd.pid, sig)
            try:
                self.bookd.wait(30)
            except subprocess.TimeoutExpired:
                self.bookd.kill()
                self.bookd.wait()
        self.bookd = None

    # ---- the catalogue ----

    def catalog(self):
        st, _ = self.api("POST", "/v1/orgs", {"name": "Chaos Studio",
                                              "timezone": "UTC"}, "cat-org")
        assert st in (200, 201), st
        self.api("POST", "/v1/locations", {"org_id": "1", "name": "Hall"},
                 "cat-loc")
        self.api("POST", "/v1/instructors", {"org_id": "1", "name": "Sam"},
                 "cat-ins")
        first = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
        st, b = self.api("POST", "/v1/series", {
            "org_id": "1", "location_id": "1", "instructor_id": "1",
            "title": "Chaos Class", "capacity": self.p["cap"],
            "waitlist_capacity": self.p["wl"], "timezone": "UTC",
            "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
            "start_time": "12:00", "duration_min": 60, "first_date": first},
            "cat-series")
        assert st == 201, (st, b)
        st, b = self.api("GET", "/v1/events?org_id=1&limit=%d"
                         % self.p["events"])
        self.events = [int(e["id"]) for e in b["events"]]
        assert len(self.events) == self.p["events"], b
        json.dump({"events": self.events, "capacity": self.p["cap"],
                   "waitlist": self.p["wl"]},
                  open(os.path.join(self.work, "catalog.json"), "w"))

    # ---- clients ----

    def start_clients(self):
        secs = self.p["seconds"]
        evs = ",".join(map(str, self.events))
        for i in range(self.p["bin"]):
            name = "b%d" % i
            self.clients.append(subprocess.Popen(
                [self.a.client, "127.0.0.1:%d" % self.bin_port, self.svc,
                 name, str(self.a.seed * 100 + i), str(secs),
                 os.path.join(self.hist, name + ".jsonl"), evs],
                stdout=open(os.path.join(self.work, name + ".log"), "w"),
                stderr=subprocess.STDOUT))
        for i in range(self.p["http"]):
            t = threading.Thread(target=HttpClient(
                self, "h%d" % i, self.a.seed * 100 + 50 + i,
                time.time() + secs).run, daemon=True)
            t.start()
            self.threads.append(t)

    # ---- faults ----

    def record(self, kind, **kw):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        kw.update(kind=kind, t=time.time())
        self.faults.write(json.dumps(kw) + "\n")
        self.faults.flush()
        log("fault %s %s" % (kind, json.dumps(kw, sort_keys=True)))

    def fault_kill9(self):
        self.bookd_kill()
        time.sleep(self.rnd.uniform(0, 1))
        self.bookd_start()
        self.record("kill9")

    def fault_stop(self):
        d = self.rnd.uniform(0.5, 4)
        os.kill(self.bookd.pid, signal.SIGSTOP)
        time.sleep(d)
        os.kill(self.bookd.pid, signal.SIGCONT)
        self.record("stop", seconds=round(d, 2))

    def fault_pg(self):
        mode = self.rnd.choice(["fast", "immediate"])
        d = self.rnd.uniform(1, 5)
        self.pg_stop(mode)
        time.sleep(d)
        self.pg_up()
        self.record("pg", mode=mode, seconds=round(d, 2))

    def fault_disk(self):
        d = self.rnd.uniform(2, 8)
        fill = os.path.join(self.disk, "fill")
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        chunk = b"\0" * (1 << 16)
        try:
            while True:  # until ENOSPC
                os.write(fd, chunk)
        except OSError:
            pass
        finally:
            os.close(fd)
        time.sleep(d)
        os.unlink(fill)
        failed = False
        try:
            st, _ = self.api("GET", "/ready", timeout=5)
            failed = st != 200
        except OSError:
            failed = True
        if failed:
            self.bookd_kill(signal.SIGTERM)
            self.bookd_start()
        self.record("disk", seconds=round(d, 2), log_failed=failed)

    def fault_sink(self):
        d = self.rnd.uniform(1, 6)
        if self.rnd.random() < 0.5:
            open(os.path.join(self.sink_dir, "fail"), "w").close()
            time.sleep(d)
            os.unlink(os.path.join(self.sink_dir, "fail"))
            self.record("sink", mode="503", seconds=round(d, 2))
        else:
            self.sink_stop()
            time.sleep(d)
            self.sink_start()
            self.record("sink", mode="down", seconds=round(d, 2))

    def faults_loop(self):
        kinds = [("kill9", 3), ("stop", 2), ("pg", 2), ("sink", 2)]
        if self.mounted:
            kinds.append(("disk", 2))
        if self.a.faults:
            kinds = [(k, 1) for k in self.a.faults.split(",")
                     if k != "disk" or self.mounted]
        bag = [k for k, w in kinds for _ in range(w)]
        end = time.time() + self.p["seconds"]
        while time.time() < end and not self.stopping.is_set():
            time.sleep(self.rnd.uniform(*self.p["gap"]))
            if time.time() >= end:
                break
            if self.bookd.poll() is not None:
                self.unexpected.append("bookd exited on its own (%s)" %
                                       self.bookd.returncode)
                self.bookd_start()
            getattr(self, "fault_" + self.rnd.choice(bag))()

    # ---- the end ----

    def wait_quiet(self):
        """Replication caught up and every notification delivered."""
        deadline = time.time() + 180
        st = None
        while time.time() < deadline:
            try:
                code, st = self.api("GET", "/v1/admin/status")
            except OSError:
                code = 0
            if (code == 200 and st["replication"]["state"] == "streaming"
                    and st["replication"]["lag_records"] == 0
                    and st["notifications"]["backlog"] == 0):
                return True
            time.sleep(0.2)
        log("not quiet after 180 s:", json.dumps(st and {
            k: st.get(k) for k in ("replication", "notifications", "wal")}))
        return False

    def run(self):
        log("seed %d, profile %s (%d s of load), work %s" %
            (self.a.seed, self.a.profile, self.p["seconds"], self.work))
        self.mount()
        os.makedirs(self.data, exist_ok=True)
        self.pg_start_cluster()
        self.sink_start()
        self.bookd_start()
        self.catalog()
        t0 = time.time()
        self.start_clients()
        self.faults_loop()
        for c in self.clients:
            try:
                c.wait(max(30, self.p["seconds"] + 30 - (time.time() - t0)))
            except subprocess.TimeoutExpired:
                c.terminate()
                c.wait()
        for t in self.threads:
            t.join(30)
        # the last recovery, with everything healthy
        if self.bookd.poll() is not None:
            self.unexpected.append("bookd exited on its own (%s)" %
                                   self.bookd.returncode)
        self.bookd_kill()
        self.bookd_start()
        self.record("kill9", final=True)
        quiet = self.wait_quiet()
        log("faults: " + ", ".join("%s %d" % kv
                                   for kv in sorted(self.counts.items())))
        # a sanitizer's report (a build with them) fails the run
        with open(os.path.join(self.work, "bookd.log"), errors="replace") as f:
            for ln in f:
                if ("ERROR: AddressSanitizer" in ln or "runtime error:" in ln
                        or "ERROR: LeakSanitizer" in ln
                        or "WARNING: ThreadSanitizer" in ln):
                    self.unexpected.append("bookd: sanitizer: " + ln.strip())
        for u in self.unexpected:
            log("noticed:", u)
        r = self.check(self.work)
        ok = r.returncode == 0 and quiet and not [
            u for u in self.unexpected if "on its own" in u or
            "sanitizer" in u]
        if ok and self.a.profile == "short":
            ok = self.check_the_checker()
        return 0 if ok else 1

    def check(self, work, quiet=False):
        return subprocess.run(
            [sys.executable, os.path.join(HERE, "check.py"), "--work", work,
             "--http", "127.0.0.1:%d" % self.http_port, "--key", self.svc,
             "--db", self.db_url], capture_output=quiet, text=True)

    def check_the_checker(self):
        """The checker over forged copies of the histories: each forgery
        must be reported as its kind of violation."""
        lines = []
        for f in sorted(os.listdir(self.hist)):
            lines += [json.loads(ln) for ln in open(os.path.join(self.hist,
                                                                 f))]
        acked = [x for x in lines if x["res"] == "ok" and x["op"] == "book"
                 and x["try"] == 0]
        if not acked:
            log("check the checker: no acknowledged booking to forge from")
            return False
        b = acked[len(acked) // 2]
        ghost = dict(b, key="forged-lost", bid=(b["ev"] << 24) | 0xFFFFF0)
        twin = dict(b, bid=b["bid"] + 1, **{"try": 1})
        forged = {
            # an acknowledged booking bookd does not hold
            "lost": lines + [ghost],
            # one key answered with two bookings
            "replay": lines + [twin],
            # a booking in bookd that no request asked for
            "once": [x for x in lines if x["key"] != b["key"]],
        }
        ok = True
        for kind, ls in forged.items():
            work = os.path.join(self.work, "forged-" + kind)
            os.makedirs(os.path.join(work, "hist"))
            for n in ("catalog.json", "faults.jsonl", "sink"):
                os.symlink(os.path.join(self.work, n), os.path.join(work, n))
            with open(os.path.join(work, "hist", "all.jsonl"), "w") as f:
                for x in ls:
                    f.write(json.dumps(x) + "\n")
            r = self.check(work, quiet=True)
            caught = r.returncode == 1 and \
                ("VIOLATION %s:" % kind) in r.stdout
            log("check the checker: forged %s %s" %
                (kind, "caught" if caught else "NOT CAUGHT"))
            if not caught:
                print(r.stdout[-2000:], r.stderr[-2000:])
                ok = False
        return ok

    def cleanup(self):
        # a second Ctrl-C does not cut the cleanup short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.stopping.set()
        for c in self.clients:
            if c.poll() is None:
                c.terminate()
                try:
                    c.wait(10)
                except subprocess.TimeoutExpired:
                    c.kill()
        self.bookd_kill(signal.SIGTERM)
        self.sink_stop()
        for d in glob.glob(os.path.join(self.work, "bookd-pg.*")):
            subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"),
                            "stop", d], capture_output=True)
        keep = os.environ.get("BOOKD_TEST_LOG_DIR")
        if keep:
            to = os.path.join(keep, "test_chaos")
            os.makedirs(to, exist_ok=True)
            for n in ("bookd.log", "sink.log"):
                if os.path.exists(os.path.join(self.work, n)):
                    shutil.copy(os.path.join(self.work, n), to)
        if self.mounted:
            if self.a.keep:
                shutil.copytree(self.disk, self.work + "/disk-copy",
                                dirs_exist_ok=True)
            subprocess.run(["umount", self.disk])
        if self.a.keep:
            log("kept", self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


class HttpClient:
    """One HTTP client: the same choices as chaos_client.c, one line per
    attempt in hist/NAME.jsonl (the format chaos_client.c's header
    states)."""

    def __init__(self, chaos, name, seed, until):
        self.x = chaos
        self.name = name
        self.rnd = random.Random(seed)
        self.until = until
        self.seq = 0
        self.known = []
        self.active = []
        self.conn = None
        self.f = open(os.path.join(chaos.hist, name + ".jsonl"), "a")

    def send(self, op):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.x.http_port, timeout=1.5)
        h = {"Authorization": "Bearer " + self.x.svc,
             "Idempotency-Key": op["key"], "Content-Type": "application/json"}
        if op["op"] == "book":
            path = "/v1/events/%d/bookings" % op["ev"]
            body = json.dumps({"customer_id": op["cust"], "payment": "none"})
        else:
            path = "/v1/bookings/%d/cancel" % op["target"]
            body = ""
        self.conn.request("POST", path, body, h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else {}

    def attempt(self, op, tr, replay):
        line = dict(c=self.name, p="http", op=op["op"], key=op["key"],
                    t0=int(time.time() * 1000))
        line["try"] = tr
        if op["op"] == "book":
            line.update(ev=op["ev"], cust=op["cust"])
        else:
            line.update(target=op["target"])
        try:
            st, b = self.send(op)
        except (OSError, http.client.HTTPException, ValueError) as e:
            st, b = 0, {"code": type(e).__name__}
            if self.conn:
                self.conn.close()
            self.conn = None
        line["t1"] = int(time.time() * 1000)
        if st in (200, 201):
            bk = b["booking"]
            line.update(res="ok", code="ok", bid=int(bk["id"]),
                        st=bk["status"], pos=bk.get("position") or 0)
            if op["op"] == "cancel":
                pr = b.get("promoted")
                line["prom"] = int(pr["id"]) if pr else 0
        # an error is {"error":{"code":...}} (docs/http.md)
        code = b["code"] if not st else \
            ((b or {}).get("error") or {}).get("code") or str(st)
        if st in (400, 404, 409, 422) and code not in UNDECIDED:
            line.update(res="refused", code=code)
        elif st not in (200, 201):
            line.update(res="unknown", code=code)
        self.f.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.f.flush()
        if line["res"] == "unknown":
            return True
        if replay:
            return False
        if line["res"] == "ok":
            if len(self.known) < 4096:
                self.known.append(op)
            if op["op"] == "book":
                self.active.append(line["bid"])
        if op["op"] == "cancel" and op["target"] in self.active:
            self.active.remove(op["target"])
        return False

    def run(self):
        while time.time() < self.until and not self.x.stopping.is_set():
            dice = self.rnd.randrange(100)
            replay = False
            if dice < 8 and self.known:
                op, replay = self.rnd.choice(self.known), True
            else:
                self.seq += 1
                key = "%s-k%d" % (self.name, self.seq)
                if dice < 40 and self.active:
                    op = dict(op="cancel", key=key,
                              target=self.rnd.choice(self.active))
                else:
                    op = dict(op="book", key=key,
                              ev=self.rnd.choice(self.x.events),
                              cust="%s-c%d" % (self.name,
                                               self.rnd.randrange(12)))
            for tr in range(6):
                if not self.attempt(op, tr, replay):
                    break
                time.sleep(0.05 + self.rnd.random() * 0.2)
            time.sleep(0.005 + self.rnd.random() * 0.02)
        self.f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="short")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--faults", default="",
                    help="only these kinds, comma separated (kill9,stop,"
                    "pg,disk,sink)")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = int(time.time()) % 100000
    a.bookd = os.path.join(a.build, "api/bookd")
    a.client = os.path.join(a.build, "tests/chaos_client")
    x = Chaos(a)

    def on_signal(sig, _):
        raise KeyboardInterrupt
    # both, also when started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 1
    try:
        rc = x.run()
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Exception as e:  # report, then clean up all the same
        log("error:", e)
        rc = 1
    finally:
        x.cleanup()
    log("seed %d: %s (again: tests/chaos/run.sh --profile %s --seed %d)" %
        (a.seed, "passed" if rc == 0 else "FAILED", a.profile, a.seed))
    return rc


if __name__ == "__main__":
    sys.exit(main())
