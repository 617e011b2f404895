#!/usr/bin/env python3
"""web_page.py: the schedule page in headless Chromium (test_web_page.sh
starts bookd --demo and passes WEB_PAGE, WEB_LINK, WEB_SHOTS,
WEB_SERVICE_KEY, WEB_CHROMIUM, WEB_DRIVER, and WEB_PROFILE: a fresh
browser profile in the test's temp dir, removed after it, as it holds the
page's local storage with the token).

Steps, each with a screenshot NN-name.png in WEB_SHOTS:
  01 the page with the anon key only: the week's classes, not signed in,
     Book disabled;
  02 the sign-in link (only the fragment changes: no reload): signed in as
     alice, the address bar cleared of the token;
  03 a free class booked from the keyboard (focus, Enter): seats left drop
     by one, "You are booked", the focus still on the button;
  04 cancelled: seats back up;
  05 the class filled by another client (the service key over HTTP), one
     more customer on its waitlist: the page shows it full and offers
     "Join the waitlist";
  06 joined: number 2 on the waitlist; 07 a seat freed by another cancel:
     number 1 (said in the status line); 08 another: booked;
  09 offline (Chromium's network emulation): the offline message; back
     online: it goes;
  10 alice's requests rate limited by another client of hers: the page's
     poll gets 429 and says "Too many requests"; it goes once they pass;
  11 a phone-sized window: no sideways scrolling, every button at least
     44 px high.
Then: no console error (but an offline fetch's net::ERR_INTERNET_DISCONNECTED
while offline, a 429's "Failed to load resource" while limited), every request of the browser to bookd's host:port
(or data: URLs), and event-list polls answered 304 (If-None-Match).
"""
import datetime
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

PAGE = os.environ["WEB_PAGE"]
LINK = os.environ["WEB_LINK"]
SHOTS = os.environ["WEB_SHOTS"]
SERVICE = os.environ["WEB_SERVICE_KEY"]
BASE = PAGE.split("/#")[0]
HOSTPORT = urllib.parse.urlsplit(BASE).netloc

passed = failed = 0


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what + (": " + str(detail) if detail else ""))
    return cond


def api(method, path, body=None, key=SERVICE, idem=None):
    """The other client: bookd's HTTP API with the service key."""
    req = urllib.request.Request(BASE + path, method=method)
    req.add_header("Authorization", "Bearer " + key)
    if idem:
        req.add_header("Idempotency-Key", idem)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait(what, fn, timeout=12.0):
    """Polls fn until it returns a true value (the page polls every 2 s)."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return check(what, True)
        except Exception as e:  # an element replaced mid-read: try again
            last = e
        time.sleep(0.2)
    return check(what, False, last)


step = 0


def shot(name):
    global step
    step += 1
    d.save_screenshot(os.path.join(SHOTS, "%02d-%s.png" % (step, name)))


opts = webdriver.ChromeOptions()
opts.binary_location = os.environ["WEB_CHROMIUM"]
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--window-size=1200,1000",
          "--no-first-run", "--disable-extensions",
          "--disable-background-networking", "--disable-sync",
          "--disable-component-update", "--disable-default-apps",
          "--user-data-dir=" + os.environ["WEB_PROFILE"]):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL",
                                          "performance": "ALL"})
d = webdriver.Chrome(service=Service(os.environ["WEB_DRIVER"]), options=opts)
d.set_page_load_timeout(20)
console = []  # every console entry, whether offline, whether limited
perf = []


def drain(offline=False, limited=False):
    for e in d.get_log("browser"):
        console.append((e, offline, limited))
    perf.extend(d.get_log("performance"))


def card(eid):
    return d.find_element(By.CSS_SELECTOR, 'li[data-event-id="%s"]' % eid)


def seats(eid):
    return int(card(eid).find_element(By.CSS_SELECTOR, ".seats")
               .get_attribute("data-available"))


def button(eid):
    return card(eid).find_element(By.CSS_SELECTOR, "button.act")


def mine(eid):
    return card(eid).get_attribute("data-mine")


def mine_text(eid):
    return card(eid).find_element(By.CSS_SELECTOR, ".mine").text


try:
    # 01: the anon key only
    d.get(PAGE)
    wait("01 the week's classes drawn",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "li[data-event-id]")) >= 3)
    check("01 the studio's name", d.find_element(By.ID, "studio").text == "Demo Studio")
    check("01 the time zone said", "Europe/Berlin" in d.find_element(By.ID, "zone").text)
    check("01 not signed in", "Not signed in" in d.find_element(By.ID, "who").text)
    check("01 the key left the address bar", "#" not in d.current_url, d.current_url)
    # a free class ahead, that alice has not booked
    now_ms = time.time() * 1000
    st, evs = api("GET", "/v1/events?limit=500")
    _, bks = api("GET", "/v1/customers/alice/bookings")
    alice_events = {b["event_id"] for b in bks["bookings"]}
    shown = {c.get_attribute("data-event-id") for c in
             d.find_elements(By.CSS_SELECTOR, "li[data-event-id]")}
    ev = next(e for e in evs["events"]
              if e["price_cents"] == 0 and e["id"] not in alice_events
              and e["id"] in shown
              and e["available"] == e["capacity"]
              and e["available"] <= 30
              and e["waitlist_capacity"] >= 2
              and datetime.datetime.fromisoformat(
                  e["start_at"].replace("Z", "+00:00")).timestamp() * 1000
              > now_ms + 3600 * 1000)
    eid, cap = ev["id"], ev["capacity"]
    print("     the class: event %s, %s, %d seats" % (eid, ev["title"], cap))
    check("01 its seats shown", seats(eid) == cap)
    check("01 Book disabled before sign-in", not button(eid).is_enabled())
    shot("not-signed-in")

    # 02: the sign-in link
    d.get(LINK)
    wait("02 signed in as alice",
         lambda: "Signed in as alice" in d.find_element(By.ID, "who").text)
    check("02 the token left the address bar", "token" not in d.current_url,
          d.current_url)
    wait("02 alice's own booking shown",
         lambda: any(mine(e) == "confirmed" for e in alice_events
                     if d.find_elements(By.CSS_SELECTOR,
                                        'li[data-event-id="%s"]' % e)))
    wait("02 Book enabled", lambda: button(eid).is_enabled()
         and button(eid).text == "Book")
    label = button(eid).get_attribute("aria-label")
    check("02 the button's label names the class", ev["title"] in label, label)
    shot("signed-in")

    # 03: book from the keyboard
    d.execute_script("arguments[0].focus()", button(eid))
    check("03 the button takes the focus",
          d.switch_to.active_element == button(eid))
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait("03 booked: the seats drop by one", lambda: seats(eid) == cap - 1)
    wait("03 'You are booked'", lambda: mine(eid) == "confirmed"
         and "booked" in mine_text(eid))
    check("03 the status line says so",
          "Booked" in d.find_element(By.ID, "status").text,
          d.find_element(By.ID, "status").text)
    check("03 the focus stayed on the class's button",
          d.switch_to.active_element == button(eid))
    check("03 the button now cancels", button(eid).text == "Cancel my booking")
    st, got = api("GET", "/v1/events/%s" % eid)
    check("03 bookd agrees", got["event"]["booked"] == 1, got)
    shot("booked")

    # 04: cancel
    button(eid).click()
    wait("04 cancelled: the seats back up", lambda: seats(eid) == cap)
    wait("04 the button books again", lambda: mine(eid) == ""
         and button(eid).text == "Book")
    shot("cancelled")

    # 05: another client fills the class, and one more waits
    for i in range(cap):
        st, _ = api("POST", "/v1/events/%s/bookings" % eid,
                    {"customer_id": "filler%d" % i}, idem="fill-%s-%d" % (eid, i))
        if st != 201:
            check("05 filler %d booked" % i, False, st)
    st, w = api("POST", "/v1/events/%s/bookings" % eid,
                {"customer_id": "waiter"}, idem="wait-%s" % eid)
    check("05 another customer waitlisted",
          st == 201 and w["booking"]["status"] == "waitlisted", w)
    wait("05 the page shows the class full", lambda: seats(eid) == 0)
    wait("05 the page offers the waitlist",
         lambda: button(eid).text == "Join the waitlist" and button(eid).is_enabled())
    check("05 its waitlist length shown",
          "waitlist: 1" in card(eid).find_element(By.CSS_SELECTOR, ".seats").text)
    shot("full-waitlist-offered")

    # 06: join; 07, 08: seats freed by others move alice up
    button(eid).click()
    wait("06 on the waitlist, number 2", lambda: mine(eid) == "waitlisted"
         and "number 2" in mine_text(eid))
    check("06 the button leaves the waitlist",
          button(eid).text == "Leave the waitlist")
    shot("waitlisted-2")
    st, b = api("GET", "/v1/customers/filler0/bookings")
    api("POST", "/v1/bookings/%s/cancel" % b["bookings"][0]["id"],
        idem="free-%s-0" % eid)
    wait("07 the position moves to 1", lambda: "number 1" in mine_text(eid))
    check("07 the status line says so",
          "number 1" in d.find_element(By.ID, "status").text,
          d.find_element(By.ID, "status").text)
    shot("waitlisted-1")
    st, b = api("GET", "/v1/customers/filler1/bookings")
    api("POST", "/v1/bookings/%s/cancel" % b["bookings"][0]["id"],
        idem="free-%s-1" % eid)
    wait("08 promoted: booked", lambda: mine(eid) == "confirmed")
    check("08 the status line says so",
          "got a seat" in d.find_element(By.ID, "status").text,
          d.find_element(By.ID, "status").text)
    shot("promoted")
    drain()

    # 09: offline, and back
    d.set_network_conditions(offline=True, latency=0, download_throughput=0,
                             upload_throughput=0)
    wait("09 the offline message", lambda: "offline" in
         d.find_element(By.ID, "alert").text and
         d.find_element(By.ID, "alert").is_displayed())
    shot("offline")
    drain(offline=True)
    d.set_network_conditions(offline=False, latency=0,
                             download_throughput=-1, upload_throughput=-1)
    wait("09 back online: the message gone",
         lambda: not d.find_element(By.ID, "alert").is_displayed())
    d.delete_network_conditions()
    drain(offline=True)  # entries of the last offline poll come late

    # 10: rate limited: another client of alice's (her token) takes her
    # requests' bucket (BOOKD_CUSTOMER_RATE) as fast as it refills, so the
    # page's own poll of her bookings gets 429; then it stops
    token = LINK.split("token=")[1]
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            api("GET", "/v1/customers/alice/bookings", key=token)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait("10 the rate-limit message", lambda: "Too many requests" in
             d.find_element(By.ID, "alert").text and
             d.find_element(By.ID, "alert").is_displayed())
        shot("rate-limited")
    finally:
        stop.set()
        for t in threads:
            t.join()
    wait("10 it goes once the page's calls pass again",
         lambda: not d.find_element(By.ID, "alert").is_displayed())
    drain(limited=True)

    # 11: a phone
    d.set_window_size(390, 844)
    time.sleep(0.5)
    d.execute_script("arguments[0].scrollIntoView()", card(eid))
    width = d.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    check("11 no sideways scrolling on a phone (%s)" % width,
          width[0] <= width[1])
    small = d.execute_script(
        "return Array.from(document.querySelectorAll('button'))"
        ".filter(b => b.offsetParent && b.getBoundingClientRect().height < 44)"
        ".map(b => b.textContent)")
    check("11 every button at least 44 px high", not small, small)
    shot("phone")
    drain()

    # the browser's log and its requests
    errors = [e for e, off, lim in console if e["level"] == "SEVERE"
              and not (off and "ERR_INTERNET_DISCONNECTED" in e["message"])
              and not (lim and "status of 429" in e["message"])]
    check("no console error (%d entries)" % len(console), not errors, errors[:3])
    hosts, not_modified, polls = set(), 0, 0
    for entry in perf:
        m = json.loads(entry["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            u = urllib.parse.urlsplit(m["params"]["request"]["url"])
            if u.scheme == "chrome":  # the browser's own new tab, before
                continue              # the page was opened
            hosts.add(u.scheme + "://" + u.netloc if u.scheme != "data" else "data:")
        if m["method"] == "Network.responseReceived":
            r = m["params"]["response"]
            if "/v1/events?" in r["url"]:
                polls += 1
                not_modified += r["status"] == 304
    check("every request to bookd only: %s" % sorted(hosts),
          hosts <= {"http://" + HOSTPORT, "data:"} and hosts)
    check("event polls answered 304 when nothing changed (%d of %d)"
          % (not_modified, polls), not_modified > 0)
finally:
    d.quit()

print("web_page: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
