#!/usr/bin/env python3
"""gen_corpus.py: writes the seed corpora of the fuzz targets that start
from real encodings: tests/fuzz/corpus/{ops,jwt,stripe}. Run from the
repository's root after building the fuzz targets (docs/reliability.md):

    python3 tests/fuzz/gen_corpus.py build-fuzz/tests/fuzz

ops: one file per body of docs/http.md's examples, byte 0 the operation's
place in fuzz_ops' list (which that binary prints, so a new route is
seeded as soon as a body is added below), byte 1 the caller. jwt: tokens
and claims as tests/unit/test_auth.c builds them. stripe: events signed
as Stripe signs them, and damaged headers. The snapshot and log-directory
corpora come from the targets themselves (FUZZ_SEED_DIR, see fuzz_snap.c
and fuzz_waldir.c): a real core's snapshot, a real log.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# op name -> bodies (valid ones from docs/http.md, then refused ones)
BODIES = {
    "event.patch": ['{"capacity":3,"instructor_id":"2"}',
                    '{"start_at":"2030-01-07T18:30:00+01:00",'
                    '"duration_min":75,"title":"Yoga (moved)"}',
                    '{"status":"cancelled"}', '{"capacity":-1}'],
    "book": ['{"customer_id":"cus_ada"}',
             '{"customer_id":"cus_gus","payment":"none"}', '{}'],
    "cancel": ['{}', ''],
    "org.create": ['{"name":"Studio North","timezone":"Europe/Berlin"}',
                   '{"name":"","timezone":"Mars/Olympus"}',
                   '{"name":"S","timezone":"UTC","cancel_cutoff_hours":24,'
                   '"hold_minutes":15,"horizon_days":30}'],
    "org.patch": ['{"cancel_cutoff_hours":24}', '{"hold_minutes":2000}'],
    "location.create": ['{"org_id":"1","name":"Hall A"}'],
    "instructor.create": ['{"org_id":"1","name":"Sam"}'],
    "customer.create": ['{"id":"cus_ada","email":"ada@example.com",'
                        '"name":"Ada"}'],
    "series.create": [
        '{"org_id":"1","location_id":"1","instructor_id":"2","title":"HIIT",'
        '"capacity":10,"waitlist_capacity":5,"price_cents":1500,'
        '"currency":"EUR","timezone":"Europe/Berlin","weekdays":["TU","TH"],'
        '"start_time":"18:00","duration_min":45,"first_date":"2026-01-06",'
        '"skip_dates":["2026-12-24"]}'],
    "generate": ['{}', '{"until":"2026-04-01","series_id":"1"}'],
    "archive": ['{"days":30}'],
    "refresh": ['{}'],
    "import": ['{"dir":"/tmp/seed","dry_run":true}'],
    "compat.book": ['{"eventId":"7","customerId":"cus_jo",'
                    '"paymentMethod":"stripe"}', '{"eventId":7}'],
    "compat.cancel": ['{"registrationId":"7","customerId":"cus_jo"}',
                      '{"bookingId":"7"}'],
    "series.patch": ['{"capacity":12,"start_time":"18:30"}',
                     '{"title":"New","from":"2026-04-01",'
                     '"last_date":"2026-06-30","weekdays":["MO"]}',
                     '{"start_time":"25:00"}'],
    "series.end": ['{"last_date":"2026-06-30"}'],
}
STRIPE_EVENTS = [
    {"id": "evt_1", "type": "payment_intent.succeeded",
     "data": {"object": {"id": "pi_1", "amount_received": 1500,
                         "currency": "eur",
                         "metadata": {"booking_id": "7"}}}},
    {"id": "evt_2", "type": "payment_intent.payment_failed",
     "data": {"object": {"id": "pi_2", "amount": 1500, "currency": "eur",
                         "metadata": {"booking_id": "7"}}}},
    {"id": "evt_3", "type": "charge.refunded", "data": {"object": {}}},
]
for name in ("stripe.webhook", "compat.stripe"):
    BODIES[name] = [json.dumps(e, separators=(",", ":"))
                    for e in STRIPE_EVENTS] + ['{"id":"evt_4"}']


def write(kind, name, data):
    os.makedirs(os.path.join(ROOT, kind), exist_ok=True)
    with open(os.path.join(ROOT, kind, name), "wb") as f:
        f.write(data)


def ops(bindir):
    with tempfile.NamedTemporaryFile() as one:
        one.write(b"\0\0{}")
        one.flush()
        out = subprocess.run([os.path.join(bindir, "fuzz_ops"), one.name],
                             env=dict(os.environ, FUZZ_OPS_LIST="1"),
                             capture_output=True, text=True).stdout
    index = {line.split()[1]: int(line.split()[0])
             for line in out.splitlines() if line.strip()}
    for name, i in index.items():
        for n, body in enumerate(BODIES.get(name, ['{}'])):
            who = 2  # the service key, with an Idempotency-Key
            write("ops", "%s-%d" % (name, n),
                  bytes([i, who]) + body.encode())
        if name in ("book", "cancel", "compat.book"):
            write("ops", "%s-jwt" % name,
                  bytes([i, 3]) + BODIES[name][0].encode())


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt(claims, secret=b"jwt-secret-0123456789", header=None):
    h = b64((header or '{"alg":"HS256","typ":"JWT"}').encode())
    p = b64(claims.encode())
    sig = hmac.new(secret, h + b"." + p, hashlib.sha256).digest()
    return h + b"." + p + b"." + b64(sig)


def jwts():
    claims = ['{"sub":"cus_1","exp":4102444800}',
              '{"sub":"cus_1","exp":1700000000}',
              '{"sub":"cus_1","exp":4102444800,"nbf":4102444000}',
              '{"sub":"cus_1","exp":4102444800.5}',
              '{"sub":"cus 1","exp":4102444800}',
              '{"sub":"cus_1"}', '{"sub":7,"exp":4102444800}']
    for n, c in enumerate(claims):
        write("jwt", "claims-%d" % n, b"\x01" + c.encode())
        write("jwt", "token-%d" % n, b"\x00" + jwt(c))
    write("jwt", "token-none", b"\x00" + jwt(
        claims[0], header='{"alg":"none"}').rsplit(b".", 1)[0] + b".")
    write("jwt", "token-wrong-secret", b"\x00" + jwt(claims[0], b"other"))
    write("jwt", "token-service", b"\x00svc-key-0123456789")
    write("jwt", "token-anon", b"\x00anon-key-0123456789")


def stripe():
    secret = b"whsec_0123456789abcdef"
    now = 1772438400
    for n, e in enumerate(STRIPE_EVENTS):
        body = json.dumps(e, separators=(",", ":")).encode()
        for skew in (0, 299, -301):
            t = b"%d" % (now + skew)
            sig = hmac.new(secret, t + b"." + body,
                           hashlib.sha256).hexdigest().encode()
            write("stripe", "header-%d-%d" % (n, skew),
                  b"\x00t=" + t + b",v1=" + sig + b"\n" + body)
        write("stripe", "header-%d-v0" % n, b"\x00t=%d, v0=00, v1=%s\n"
              % (now, hmac.new(secret, b"%d." % now + body,
                               hashlib.sha256).hexdigest().encode()) + body)
        write("stripe", "signed-%d" % n, b"\x01\x00\x00" + body)
    write("stripe", "signed-skew", b"\x01\x2c\x01{}")   # +300 s
    write("stripe", "header-two-t", b"\x00t=1,t=2,v1=00\n{}")
    write("stripe", "header-empty", b"\x00\n{}")


def seeded(bindir, name):
    """The corpus a target writes itself from real encodings."""
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with tempfile.NamedTemporaryFile() as one:
        one.write(b"\0")
        one.flush()
        subprocess.run([os.path.join(bindir, "fuzz_" + name), one.name],
                       env=dict(os.environ, FUZZ_SEED_DIR=d),
                       capture_output=True, check=True)


if __name__ == "__main__":
    bindir = sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/tests/fuzz"
    ops(bindir)
    seeded(bindir, "snap")
    seeded(bindir, "waldir")
    jwts()
    stripe()
