"""status_page.py: the /status page in headless Chromium (selenium), driven
by tests/integration/test_status_page.sh against a bookd it started.

    status_page.py URL SERVICE_KEY OUT_DIR

Makes a class with room for the load; opens URL/status, types the service
key into the page's form; waits for its figures; books 400 seats over about
four seconds from a thread (http.client on one connection, 100/s) while it
reads the page every half second; then checks that the page showed the load
(decisions/s above 10 at some point, the log's position up by at least 400,
a p99 latency, lines in the charts), that the browser logged no console
error and asked no host but bookd for anything. Screenshots (before, under
load, after) go to OUT_DIR. Prints "ok ..." / "FAIL ..." lines; exit 0 only
when all passed.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, KEY, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
HOST = urllib.parse.urlsplit(URL).netloc
BOOKINGS = 400
failed = 0


def ok(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    failed += 0 if cond else 1


def call(conn, method, path, body=None, key=None):
    headers = {"Authorization": f"Bearer {KEY}",
               "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def setup():
    c = http.client.HTTPConnection(HOST, timeout=10)
    _, o = call(c, "POST", "/v1/orgs", {"name": "Load", "timezone": "UTC"})
    org = o["org"]["id"]
    _, l = call(c, "POST", "/v1/locations", {"org_id": org, "name": "Hall"})
    _, i = call(c, "POST", "/v1/instructors", {"org_id": org, "name": "Kai"})
    day = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%d")
    st, _ = call(c, "POST", "/v1/series", {
        "org_id": org, "location_id": l["location"]["id"],
        "instructor_id": i["instructor"]["id"], "title": "Load",
        "capacity": BOOKINGS + 10, "timezone": "UTC", "weekdays": ["MO", "TU",
        "WE", "TH", "FR", "SA", "SU"], "start_time": "10:00",
        "duration_min": 60, "first_date": day, "last_date": day})
    _, ev = call(c, "GET", f"/v1/events?org_id={org}")
    c.close()
    ok(st == 201 and len(ev["events"]) == 1, "a class for the load")
    return ev["events"][0]["id"]


def load(event, done):
    c = http.client.HTTPConnection(HOST, timeout=10)
    start = time.monotonic()
    for n in range(BOOKINGS):
        wait = start + n / 100 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        st, _ = call(c, "POST", f"/v1/events/{event}/bookings",
                     {"customer_id": f"cus_load_{n}"}, key=f"load-{event}-{n}")
        done["statuses"][st] = done["statuses"].get(st, 0) + 1
    c.close()


def figure(d, id_):
    return d.find_element(By.ID, id_).text


def as_int(s):
    return int(s.replace(",", "")) if s.replace(",", "").isdigit() else -1


def as_float(s):
    try:
        return float(s)
    except ValueError:
        return None


event = setup()
os.makedirs(OUT, exist_ok=True)
opts = webdriver.ChromeOptions()
opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
          "--disable-gpu", "--window-size=1280,1500", "--no-first-run",
          "--disable-extensions", "--disable-background-networking",
          "--disable-component-update", "--disable-sync",
          "--disable-default-apps", f"--user-data-dir={OUT}/profile"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL",
                                          "performance": "ALL"})
drv = webdriver.Chrome(
    service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
    options=opts)
try:
    drv.set_page_load_timeout(20)
    drv.get(URL + "/status")
    form = WebDriverWait(drv, 10).until(
        lambda d: d.find_element(By.ID, "key-form").is_displayed()
        and d.find_element(By.ID, "key-form"))
    ok(True, "/status asks for the service key")
    drv.find_element(By.ID, "key").send_keys(KEY)
    drv.find_element(By.CSS_SELECTOR, "#key-form button").click()
    WebDriverWait(drv, 10).until(
        lambda d: d.find_element(By.ID, "board").is_displayed()
        and as_int(figure(d, "wal-appended")) > 0)
    ok(drv.execute_script(
        "return sessionStorage.getItem('bookd-service-key')") == KEY,
       "the key is kept in sessionStorage")
    time.sleep(2.5)  # a few quiet samples
    before = as_int(figure(drv, "wal-appended"))
    quiet = as_float(figure(drv, "decisions-rate"))
    ok(quiet is not None and quiet < 5,
       f"decisions/s before the load: {quiet}")
    drv.save_screenshot(f"{OUT}/status-before.png")

    done = {"statuses": {}}
    t = threading.Thread(target=load, args=(event, done))
    t.start()
    seen_rate, seen_p99 = 0.0, None
    while t.is_alive():
        time.sleep(0.5)
        r = as_float(figure(drv, "decisions-rate")) or 0.0
        seen_rate = max(seen_rate, r)
        p = as_float(figure(drv, "lat-p99"))
        seen_p99 = p if p is not None else seen_p99
        if r > 10:  # the last one under the load is kept
            drv.save_screenshot(f"{OUT}/status-load.png")
    t.join()
    ok(done["statuses"] == {201: BOOKINGS},
       f"{BOOKINGS} bookings made: {done['statuses']}")
    time.sleep(1.5)  # the page's next sample sees the last of them
    after = as_int(figure(drv, "wal-appended"))
    ok(seen_rate > 10, f"decisions/s seen under the load: {seen_rate}")
    ok(seen_p99 is not None, f"a p99 latency shown: {seen_p99} ms")
    ok(after - before >= BOOKINGS,
       f"the log's position went {before} -> {after}")
    points = drv.execute_script(
        "return document.querySelector('#chart-decisions polyline')"
        ".getAttribute('points').split(' ').length")
    ok(points >= 8, f"the decisions chart has {points} points")
    peak = drv.execute_script(
        "return document.querySelector('#chart-decisions text').textContent")
    ok(peak.startswith("max ") and as_float(peak[4:]) and
       as_float(peak[4:]) > 10, f"the decisions chart's {peak}")
    jobs = len(drv.find_elements(By.CSS_SELECTOR, "#jobs tr"))
    ok(jobs >= 10, f"{jobs} jobs listed")
    alerts = figure(drv, "alerts")
    ok(alerts != "", f"alerts: {alerts!r}")
    drv.save_screenshot(f"{OUT}/status.png")

    errors = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    ok(not errors, f"no console error {errors if errors else ''}")
    # the network's requests (chrome://, data: and the like are the
    # browser's own, before the page and for its blank tab)
    hosts = set()
    for e in drv.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            u = urllib.parse.urlsplit(m["params"]["request"]["url"])
            if u.scheme in ("http", "https", "ws", "wss", "ftp"):
                hosts.add(u.netloc)
    ok(hosts == {HOST}, f"requests only to bookd: {sorted(hosts)}")
finally:
    drv.quit()
print(f"status_page: {failed} failed", flush=True)
sys.exit(1 if failed else 0)
