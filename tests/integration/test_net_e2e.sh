#!/usr/bin/env bash
# bookd's connection layer (api/net.c) end to end, over HTTP and the binary
# protocol, each case on its own bookd (temp data dir, ports chosen by the
# kernel, embedded mode):
#   - shutdown: bookings acknowledged over both protocols, then pipelined
#     listings (GET /v1/events, event.list) answered and more left in
#     flight, then SIGTERM: exit 0 with no sanitizer report (a listing's
#     views were freed twice, issue 13), and after a restart every
#     acknowledged booking is there.
#   - port: a second bookd on the HTTP or the binary port of a running one
#     (two network threads on a fixed port), or on its data dir, is refused
#     with a clear error and a non-zero exit; the first goes on serving.
#   - timeouts (BOOKD_REQUEST_TIMEOUT_MS=1000): a connection that sends nothing,
#     and a request head trickled a byte at a time, are answered 408
#     request_timeout and closed within the deadline (not reset per byte);
#     on the binary port both are closed; a keep-alive connection idle
#     between requests is not.
#   - limits (BOOKD_CONNECTIONS=16, BOOKD_CONN_RESERVE=4,
#     BOOKD_CONN_PER_ADDRESS=6; old bookds ignore these, and fail): the
#     7th connection from one address is closed, another address gets in;
#     with the table full but for the reserve, /health and the service key
#     are served (HTTP and binary), the anon key is answered 503 overloaded
#     (binary: overloaded) and closed; a full table closes new connections;
#     16 connections that never send are timed out and clients get in
#     again; /metrics counts the refusals and the timeouts.
#
#   bash tests/integration/test_net_e2e.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd or python3 is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_net_e2e python3

env -u DATABASE_URL python3 - "$bookd" "$tmp" "$@" <<'PY'
import http.client, json, os, re, signal, socket, struct, subprocess, sys, time

BOOKD, TMP = sys.argv[1], sys.argv[2]
ONLY = sys.argv[3:]  # case names to run (all when empty)
SVC, ANON = "net-svc-key", "net-anon-key"
passed = failed = 0


def recv_more(sock):
    """The next bytes from sock; b"" at its end, on a timeout or an error."""
    try:
        return sock.recv(1 << 16)
    except (socket.timeout, OSError):
        return b""


def check(what, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what, flush=True)
    else:
        failed += 1
        print("FAIL " + what, flush=True)
    return cond


# ---- bookd ----

class Bookd:
    starts = 0

    def __init__(self, name, *flags, data=None, env=None):
        self.name = name
        self.env = dict(os.environ, **(env or {}))
        self.data = data or os.path.join(TMP, name + ".data")
        self.log = os.path.join(TMP, name + ".log")
        self.flags = list(flags)
        self.proc = None

    def start(self, expect_fail=False):
        with open(self.log, "a") as f:
            f.write("--- bookd start\n")
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            [BOOKD, "--data-dir", self.data, "--listen", "127.0.0.1:0",
             "--binary-listen", "127.0.0.1:0", "--service-key", SVC,
             "--anon-key", ANON] + self.flags,
            stdout=logf, stderr=logf, env=self.env)
        logf.close()
        starts = self.log_text().count("--- bookd start")
        deadline = time.monotonic() + 60  # recovery under TSan on a busy box
        while time.monotonic() < deadline:
            text = self.log_text().split("--- bookd start")[starts]
            m = re.search(r"HTTP on http://([\d.]+):(\d+), binary protocol "
                          r"on ([\d.]+):(\d+)", text)
            if m:
                self.http_port, self.bin_port = int(m.group(2)), int(m.group(4))
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not expect_fail:
            print("bookd did not start:\n" + self.log_text(), flush=True)
            raise SystemExit(1)
        return False

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"

    def clean_log(self):
        t = self.log_text()
        return not any(s in t for s in ("AddressSanitizer", "LeakSanitizer",
                                        "ThreadSanitizer", "runtime error",
                                        "assertion failed"))

    # HTTP, one request per connection
    def http(self, method, path, body=None, key=SVC, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        h = {"Authorization": "Bearer " + key} if key else {}
        h.update(headers or {})
        data = json.dumps(body) if body is not None else None
        if data is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw


# ---- HTTP over a raw socket (pipelining) ----

def http_answers(sock, count, timeout=10):
    """Reads count answers (Content-Length framed); returns their statuses."""
    sock.settimeout(timeout)
    buf, statuses = b"", []
    while len(statuses) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            size = int(m.group(1)) if m else 0
            if len(buf) >= end + 4 + size:
                statuses.append(int(head.split(" ", 2)[1]))
                buf = buf[end + 4 + size:]
                continue
        d = recv_more(sock)
        if not d:
            break
        buf += d
    return statuses


# ---- msgpack, as much as the binary protocol needs ----

def mp(v):
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        return b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, str):
        v = v.encode()
        return (bytes([0xa0 | len(v)]) if len(v) < 32
                else b"\xd9" + bytes([len(v)])) + v
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    raise TypeError(v)


def unmp(b, i=0):
    t = b[i]
    if t < 0x80: return t, i + 1
    if t >= 0xe0: return t - 256, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        if t <= 0x8f: n, i = t & 15, i + 1
        elif t == 0xde: n, i = struct.unpack(">H", b[i+1:i+3])[0], i + 3
        else: n, i = struct.unpack(">I", b[i+1:i+5])[0], i + 5
        d = {}
        for _ in range(n):
            k, i = unmp(b, i)
            d[k], i = unmp(b, i)
        return d, i
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        if t <= 0x9f: n, i = t & 15, i + 1
        elif t == 0xdc: n, i = struct.unpack(">H", b[i+1:i+3])[0], i + 3
        else: n, i = struct.unpack(">I", b[i+1:i+5])[0], i + 5
        a = []
        for _ in range(n):
            x, i = unmp(b, i)
            a.append(x)
        return a, i
    if 0xa0 <= t <= 0xbf:
        n = t & 31
        return b[i+1:i+1+n].decode(), i + 1 + n
    if t in (0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
        n = int.from_bytes(b[i+1:i+1+w], "big")
        s = b[i+1+w:i+1+w+n]
        return (s.decode() if t >= 0xd9 else s), i + 1 + w + n
    if t == 0xc0: return None, i + 1
    if t == 0xc2: return False, i + 1
    if t == 0xc3: return True, i + 1
    if t in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
        return int.from_bytes(b[i+1:i+1+w], "big"), i + 1 + w
    if t in (0xd0, 0xd1, 0xd2, 0xd3):
        w = {0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
        return int.from_bytes(b[i+1:i+1+w], "big", signed=True), i + 1 + w
    if t == 0xcb: return struct.unpack(">d", b[i+1:i+9])[0], i + 9
    if t == 0xca: return struct.unpack(">f", b[i+1:i+5])[0], i + 5
    raise ValueError("msgpack type 0x%02x" % t)


def frame(obj):
    body = mp(obj)
    return struct.pack(">I", len(body)) + body


def bin_answers(sock, count, timeout=10):
    """Reads count answer frames; returns them decoded."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < count:
        if len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) >= 4 + n:
                out.append(unmp(buf[4:4 + n])[0])
                buf = buf[4 + n:]
                continue
        d = recv_more(sock)
        if not d:
            break
        buf += d
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def dial(port, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_to_close(s, timeout=8):
    """What the server sends until it closes; (bytes, seconds, closed)."""
    t0, data = time.time(), b""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return data, time.time() - t0, True
            data += d
    except socket.timeout:
        return data, time.time() - t0, False
    except OSError:
        return data, time.time() - t0, True


def http_get(s, path, key=None, close=False):
    """One request on an open connection; (status, head, body)."""
    h = "GET %s HTTP/1.1\r\nHost: x\r\n" % path
    if key:
        h += "Authorization: Bearer %s\r\n" % key
    if close:
        h += "Connection: close\r\n"
    s.sendall((h + "\r\n").encode())
    s.settimeout(5)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return 0, "", b""
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        head = head.decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        while m and len(body) < int(m.group(1)):
            d = s.recv(65536)
            if not d:
                break
            body += d
        return int(head.split(" ", 2)[1]), head, body
    except (socket.timeout, OSError):
        return 0, "", b""


def catalogue(b):
    """An org, a location, an instructor and a daily series; event ids."""
    _, r = b.http("POST", "/v1/orgs", {"name": "Net", "timezone": "UTC"})
    org = r["org"]["id"]
    _, r = b.http("POST", "/v1/locations", {"org_id": org, "name": "Hall"})
    loc = r["location"]["id"]
    _, r = b.http("POST", "/v1/instructors", {"org_id": org, "name": "Ann"})
    ins = r["instructor"]["id"]
    first = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    st, r = b.http("POST", "/v1/series", {
        "org_id": org, "location_id": loc, "instructor_id": ins,
        "title": "Flow", "capacity": 50, "waitlist_capacity": 5,
        "timezone": "UTC", "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
        "start_time": "10:00", "duration_min": 60, "first_date": first},
        headers={"Idempotency-Key": "net-series"})
    assert st == 201, (st, r)
    _, r = b.http("GET", "/v1/events?limit=5")
    return [e["id"] for e in r["events"]]


# ---- the cases ----

def case_shutdown():
    """Pipelined listings over both protocols, then SIGTERM: exit 0, no
    sanitizer report, every acknowledged booking there after a restart."""
    b = Bookd("shutdown")
    b.start()
    events = catalogue(b)
    acked = []
    for k in range(5):
        st, r = b.http("POST", "/v1/events/%s/bookings" % events[0],
                       {"customer_id": "h%d" % k},
                       headers={"Idempotency-Key": "hk-%d" % k})
        if st == 201:
            acked.append(r["booking"]["id"])
    bs = socket.create_connection(("127.0.0.1", b.bin_port))
    bs.sendall(frame({"v": 1, "auth": SVC}) + b"".join(
        frame({"id": 1 + k, "op": "book", "key": "bk-%d" % k,
               "event_id": int(events[1]), "customer_id": "b%d" % k})
        for k in range(5)))
    answers = bin_answers(bs, 6)
    acked += [str(a["booking"]["id"]) for a in answers[1:]
              if a.get("code") == "ok"]
    check("10 bookings acknowledged over HTTP and binary", len(acked) == 10)

    hs = socket.create_connection(("127.0.0.1", b.http_port))
    get = ("GET /v1/events?limit=%d HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bearer %s\r\n\r\n")
    hs.sendall(b"".join((get % (50 + k, ANON)).encode() for k in range(20)))
    check("20 pipelined GET /v1/events answered 200",
          http_answers(hs, 20) == [200] * 20)
    bs.sendall(b"".join(frame({"id": 100 + k, "op": "event.list",
                               "limit": 50 + k}) for k in range(20)))
    got = bin_answers(bs, 20)
    check("20 pipelined event.list answered ok",
          len(got) == 20 and all(a.get("code") == "ok" and a["events"]
                                 for a in got))
    # More in flight, then SIGTERM at once.
    hs.sendall(b"".join((get % (60 + k, ANON)).encode() for k in range(20)))
    bs.sendall(b"".join(frame({"id": 200 + k, "op": "event.list",
                               "limit": 60 + k}) for k in range(20)))
    rc = b.stop()
    check("SIGTERM after pipelined listings: exit 0 (was %s)" % rc, rc == 0)
    check("no sanitizer report or assertion in bookd's log", b.clean_log())
    hs.close()
    bs.close()

    b.start()
    found = 0
    for bid in acked:
        st, r = b.http("GET", "/v1/bookings/%s" % bid)
        found += st == 200 and r["booking"]["status"] == "confirmed"
    check("after the restart: the 10 acknowledged bookings, confirmed",
          found == 10)
    rc = b.stop()
    check("second SIGTERM: exit 0", rc == 0 and b.clean_log())


def case_port():
    """A second bookd on a port or a data dir in use is refused."""
    hp, bp = free_port(), free_port()
    # Fixed ports (flags given later win): the first thread probes, the
    # second joins it (SO_REUSEPORT).
    a = Bookd("port-a", "--threads", "2", "--listen", "127.0.0.1:%d" % hp,
              "--binary-listen", "127.0.0.1:%d" % bp)
    a.start()
    check("bookd with 2 network threads listens on the fixed ports",
          (a.http_port, a.bin_port) == (hp, bp))
    served = 0
    for _ in range(20):
        st, _ = a.http("GET", "/health", key=None)
        served += st == 200
    check("both threads' listeners serve (20 of 20 connections)", served == 20)

    for name, flags, what in (
            ("port-b1", ["--listen", "127.0.0.1:%d" % hp], "HTTP port"),
            ("port-b2", ["--binary-listen", "127.0.0.1:%d" % bp], "binary port"),
            ("port-b3", ["--listen", "0.0.0.0:%d" % hp], "HTTP port on 0.0.0.0")):
        b = Bookd(name, *flags)
        started = b.start(expect_fail=True)
        rc = b.proc.wait(timeout=20) if not started else b.stop()
        log = b.log_text()
        check("a second bookd on the %s: refused, exit %s, says in use"
              % (what, rc), not started and rc not in (0, None) and
              "in use" in log)
    b = Bookd("port-b4", data=a.data)
    started = b.start(expect_fail=True)
    rc = b.proc.wait(timeout=20) if not started else b.stop()
    check("a second bookd on the same data dir: refused, exit %s, names "
          "the lock" % rc, not started and rc not in (0, None) and
          "LOCK" in b.log_text())
    st, _ = a.http("GET", "/health", key=None)
    check("the first bookd still serves", st == 200)
    rc = a.stop()
    check("first bookd: SIGTERM exit 0", rc == 0 and a.clean_log())


def case_timeouts():
    """408 for a request not whole in time, from its first byte."""
    b = Bookd("timeouts", env={"BOOKD_REQUEST_TIMEOUT_MS": "1000"})
    b.start()
    t0 = time.time()
    s, s2 = dial(b.http_port), dial(b.bin_port)  # both wait at once
    data, _, closed = read_to_close(s)
    took = time.time() - t0
    check("HTTP, nothing sent: 408 request_timeout, closed in %.1f s" % took,
          closed and data.startswith(b"HTTP/1.1 408 ") and
          b'"code":"request_timeout"' in data and b"Connection: close" in data
          and 0.9 < took < 5)
    s.close()
    data, _, closed = read_to_close(s2)
    took = time.time() - t0
    check("binary, nothing sent: closed without a word in %.1f s" % took,
          closed and data == b"" and 0.9 < took < 5)
    s2.close()

    s = dial(b.http_port)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    t0, closed, data = time.time(), False, b""
    for i in range(len(head)):
        try:
            s.sendall(head[i:i + 1])
            s.settimeout(0.1)
            d = s.recv(65536)
            data += d
            if not d or data.endswith(b"}"):
                break
        except socket.timeout:
            continue
        except OSError:
            break
    more, _, closed = read_to_close(s, 3)
    data += more
    took = time.time() - t0
    check("HTTP, a head trickled a byte every 100 ms: 408 and closed in "
          "%.1f s (deadline from the first byte)" % took,
          closed and data.startswith(b"HTTP/1.1 408 ") and took < 5)
    s.close()

    s = dial(b.bin_port)
    hello = frame({"v": 1, "auth": SVC})
    t0 = time.time()
    for i in range(len(hello) - 1):
        try:
            s.sendall(hello[i:i + 1])
        except OSError:
            break
        time.sleep(0.2)
    data, _, closed = read_to_close(s, 3)
    check("binary, a hello trickled a byte every 200 ms: closed in %.1f s"
          % (time.time() - t0), closed and data == b"" and
          time.time() - t0 < 4.5)
    s.close()

    s, bs = dial(b.http_port), dial(b.bin_port)
    st1 = http_get(s, "/health")[0]
    bs.sendall(frame({"v": 1, "auth": SVC}))
    a1 = bin_answers(bs, 1)
    time.sleep(2.5)
    st2 = http_get(s, "/health")[0]
    check("HTTP keep-alive idle 2.5 s between requests: still served",
          st1 == 200 and st2 == 200)
    s.close()
    bs.sendall(frame({"id": 5, "op": "event.list"}))
    a2 = bin_answers(bs, 1)
    check("binary idle 2.5 s after the hello: still served",
          a1 and a1[0].get("code") == "ok" and a2 and a2[0].get("code") == "ok")
    bs.close()
    rc = b.stop()
    check("SIGTERM exit 0", rc == 0 and b.clean_log())


def case_limits():
    """Per-address cap, the reserve, and idle connections timed out."""
    b = Bookd("limits", env={"BOOKD_CONNECTIONS": "16",
                             "BOOKD_CONN_RESERVE": "4",
                             "BOOKD_CONN_PER_ADDRESS": "6",
                             "BOOKD_REQUEST_TIMEOUT_MS": "1500"})
    b.start()
    held = []
    for k in range(6):  # 127.0.0.2 up to its cap; a request each (no timeout)
        s = dial(b.http_port, "127.0.0.2")
        held.append(s)
        http_get(s, "/health")
    s = dial(b.http_port, "127.0.0.2")
    data, took, closed = read_to_close(s, 3)
    check("the 7th connection from one address: closed at once (%.1f s)"
          % took, closed and data == b"" and took < 1)
    s.close()
    for k in range(6):  # 127.0.0.3: 12 of the 16 slots taken, the rest reserve
        s = dial(b.bin_port if k % 2 else b.http_port, "127.0.0.3")
        held.append(s)
        if k % 2:
            s.sendall(frame({"v": 1, "auth": SVC}))
            bin_answers(s, 1)
        else:
            http_get(s, "/health")
    check("another address gets in while the first is at its cap",
          len(held) == 12)

    s = dial(b.http_port, "127.0.0.4")
    st, head, body = http_get(s, "/v1/events?limit=1", key=ANON)
    data, _, closed = read_to_close(s, 3)
    check("reserve: the anon key answered 503 overloaded, then closed",
          st == 503 and b'"code":"overloaded"' in body and closed)
    s.close()
    s = dial(b.http_port, "127.0.0.4")
    st, head, _ = http_get(s, "/health")
    data, _, closed = read_to_close(s, 3)
    check("reserve: /health answered 200, then closed",
          st == 200 and closed and re.search(r"(?im)^connection: close", head))
    s.close()
    s = dial(b.http_port, "127.0.0.4")
    st1 = http_get(s, "/v1/admin/status", key=SVC)[0]
    st2 = http_get(s, "/v1/events?limit=1", key=SVC)[0]
    check("reserve: the service key served, kept alive (%s, %s)" % (st1, st2),
          st1 == 200 and st2 == 200)
    held.append(s)
    s = dial(b.bin_port, "127.0.0.4")
    s.sendall(frame({"v": 1, "auth": ANON}))
    a = bin_answers(s, 1)
    data, _, closed = read_to_close(s, 3)
    check("reserve, binary: the anon key's hello answered overloaded, closed",
          a and a[0].get("code") == "overloaded" and closed)
    s.close()
    s = dial(b.bin_port, "127.0.0.4")
    s.sendall(frame({"v": 1, "auth": SVC}) +
              frame({"id": 9, "op": "event.list"}))
    a = bin_answers(s, 2)
    check("reserve, binary: the service key served",
          len(a) == 2 and a[0].get("code") == "ok" and a[1].get("code") == "ok")
    held.append(s)
    for k in range(2):  # the reserve full too: 16 of 16
        s = dial(b.http_port, "127.0.0.5")
        http_get(s, "/v1/admin/status", key=SVC)
        held.append(s)
    s = dial(b.http_port, "127.0.0.6")
    data, took, closed = read_to_close(s, 3)
    check("the whole table full: a new connection closed at once",
          closed and data == b"" and took < 1)
    s.close()
    for s in held:
        s.close()
    time.sleep(0.3)

    # 16 connections that never send a request (no cap on this address):
    # each is timed out, then clients get in again.
    idle = [dial(b.http_port, "127.0.0.%d" % (10 + k // 6)) for k in range(16)]
    time.sleep(0.3)
    s = dial(b.http_port, "127.0.0.20")
    st = http_get(s, "/v1/events?limit=1", key=ANON)[0]
    s.close()
    check("16 idle connections fill the table: the anon key refused (%s)" % st,
          st in (0, 503))
    timed_out = 0
    for s in idle:
        data, _, closed = read_to_close(s, 5)
        timed_out += closed and data.startswith(b"HTTP/1.1 408 ")
        s.close()
    s = dial(b.http_port, "127.0.0.20")
    st = http_get(s, "/v1/events?limit=1", key=ANON)[0]
    s.close()
    check("the 16 idle connections answered 408 and closed (%d), then the "
          "anon key served (%s)" % (timed_out, st), timed_out == 16 and st == 200)
    st, text = b.http("GET", "/metrics", key=None)
    text = text.decode() if isinstance(text, bytes) else str(text)
    def metric(name):
        m = re.search(r"(?m)^%s (\d+)$" % re.escape(name), text)
        return int(m.group(1)) if m else -1
    cap = metric('bookd_connections_refused_total{reason="address_cap"}')
    full = metric('bookd_connections_refused_total{reason="table_full"}')
    tmo = metric("bookd_request_timeouts_total")
    check("/metrics counts them: %d over an address's cap, %d on a full "
          "table, %d request timeouts" % (cap, full, tmo),
          cap == 1 and full == 2 and tmo == 16)
    rc = b.stop()
    check("SIGTERM exit 0", rc == 0 and b.clean_log())


CASES = [("shutdown", case_shutdown), ("port", case_port),
         ("timeouts", case_timeouts), ("limits", case_limits)]
for name, fn in CASES:
    if ONLY and name not in ONLY:
        continue
    print("--- " + name, flush=True)
    try:
        fn()
    except Exception as e:  # a broken case fails, the others still run
        check("%s: %r" % (name, e), False)
if failed:
    for f in sorted(os.listdir(TMP)):
        if f.endswith(".log"):
            print("--- %s (tail)" % f)
            print("\n".join(open(os.path.join(TMP, f), errors="replace")
                            .read().splitlines()[-30:]))
print("test_net_e2e: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
