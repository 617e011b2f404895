#!/usr/bin/env python3
"""notify_sink.py: the local sinks bookd's notification tests and benchmark
deliver to, both on 127.0.0.1: a webhook (http.server) that verifies every
Standard Webhooks signature with the secret, and an SMTP server (Debian's
python3-aiosmtpd). Each receipt is one JSON line appended to
<out>/webhook.jsonl or <out>/email.jsonl (with the time received), so a run
killed and started again adds to the same files.

  notify_sink.py --out DIR --secret whsec_... [--http-port P]
                 [--smtp-port Q] [--fail-first N] [--fail-rate R]
                 [--slow-ms MS] [--seed S] [--smtp-login USER:PASS]...

--fail-first N answers 503 to the first N webhook requests, --fail-rate R
answers 503 to a share R of them (seeded), --slow-ms waits that long
before answering; while the file <out>/fail exists every request is
answered 503. With --smtp-login (one or more), the SMTP server offers
AUTH (PLAIN, LOGIN; over plain SMTP, this being 127.0.0.1), refuses a
message before a login, accepts only the pairs given, and records in each
email's line the user and the index of the pair that logged in ("login":
[user, i]; never the password). Stops on SIGTERM.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import sys
import threading
import time
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def key_of(secret):
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[6:])
    return secret.encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--smtp-port", type=int, default=0)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--slow-ms", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--smtp-login", action="append", default=[])
    a = ap.parse_args()
    key = key_of(a.secret)
    lock = threading.Lock()
    state = {"requests": 0}
    rnd = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    def record(name, obj):
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        with lock:
            with open(os.path.join(a.out, name), "a") as f:
                f.write(line)
                f.flush()

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            t = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            wid = self.headers.get("webhook-id", "")
            ts = self.headers.get("webhook-timestamp", "")
            sigs = self.headers.get("webhook-signature", "")
            mac = hmac.new(key, f"{wid}.{ts}.".encode() + body,
                           hashlib.sha256).digest()
            want = "v1," + base64.b64encode(mac).decode()
            sig_ok = any(hmac.compare_digest(s, want) for s in sigs.split())
            with lock:
                state["requests"] += 1
                n = state["requests"]
                fail = (n <= a.fail_first or
                        (a.fail_rate > 0 and rnd.random() < a.fail_rate))
            if os.path.exists(os.path.join(a.out, "fail")):
                fail = True
            if a.slow_ms:
                time.sleep(a.slow_ms / 1000)
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            status = 503 if fail or not sig_ok else 200
            record("webhook.jsonl", {
                "received": t, "status": status, "id": wid,
                "sig_ok": sig_ok, "ts": ts, "body": doc,
                "id_matches": bool(doc) and doc.get("id") == wid})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", a.http_port), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    smtp = None
    if a.smtp_port:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        logins = [tuple(x.split(":", 1)) for x in a.smtp_login]

        def authenticator(server, session, envelope, mechanism, data):
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user = data.login.decode()
            for i, (u, pw) in enumerate(logins):
                if user == u and hmac.compare_digest(data.password,
                                                     pw.encode()):
                    return AuthResult(success=True, auth_data=[user, i])
            print(f"sink: smtp login refused for user {user}", flush=True)
            return AuthResult(success=False, handled=False)

        class Mail:
            async def handle_DATA(self, server, session, envelope):
                msg = BytesParser(policy=email_policy).parsebytes(
                    envelope.content)
                record("email.jsonl", {
                    "received": time.time(),
                    "id": msg.get("X-Bookd-Notification-Id", ""),
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "login": session.auth_data,
                    "subject": str(msg.get("Subject", "")),
                    "text": msg.get_body(("plain",)).get_content()})
                return "250 OK"

        auth = {}
        if logins:
            auth = {"authenticator": authenticator, "auth_required": True,
                    "auth_require_tls": False}
        smtp = Controller(Mail(), hostname="127.0.0.1", port=a.smtp_port,
                          **auth)
        smtp.start()
    print(f"sink: webhook on 127.0.0.1:{httpd.server_address[1]}"
          + (f", smtp on 127.0.0.1:{a.smtp_port}" if smtp else ""),
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    httpd.shutdown()
    if smtp:
        smtp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
