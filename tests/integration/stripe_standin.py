#!/usr/bin/env python3
"""stripe_standin.py: a local stand-in for the part of Stripe's API bookd calls
(payments/payments.c), for tests: nothing reaches the internet.

Answers as Stripe's API does for
  POST /v1/payment_intents   form-encoded: amount, currency,
                             metadata[booking_id], automatic_payment_methods
                             [enabled] or payment_method_types[]; answers a
                             PaymentIntent (id pi_..., client_secret
                             pi_..._secret_..., status
                             requires_payment_method)
  POST /v1/refunds           form-encoded: payment_intent (one this stand-in
                             made), amount (optional: all of it); answers a
                             Refund (id re_..., status succeeded, or as the
                             mode says); a second full refund is 400
                             charge_already_refunded
  GET  /v1/refunds/{id}      the Refund as it is now (404 resource_missing
                             for an id it did not make); a pending one
                             turns final after the mode's refund_polls
                             looks
with Stripe's rules: Authorization: Bearer sk_... required (401); the
Idempotency-Key replays the first answer (status and body, with
Idempotent-Replayed: true), the same key with other parameters is 400
idempotency_error, the same key while its first request is still being
answered is 409 idempotency_error; errors as Stripe's documented shape
{"error": {"type", "code", "message", ...}}: invalid_request_error (400),
card_error (402), api_error (500).

Told what to do by its control routes (JSON bodies, no auth):
  POST /_standin/mode  {"fail": 500|402|400|null, "fail_count": N (the next N
                     calls fail, then it works; absent: until told
                     otherwise), "delay_ms": N (each call waits before
                     answering, after its object was made),
                     "refund_status": "pending"|"requires_action"|null
                     (new refunds start so; null: succeeded),
                     "refund_polls": N (GETs that still see it so),
                     "refund_final": "succeeded"|"failed"|"canceled" (what
                     it turns into)}
  GET  /_standin/requests  every API call it got, in order: method, path,
                     idempotency_key, form, status, replayed, authorized
  GET  /_standin/objects   the intents and refunds it made
An injected failure happens before the API works on the request (as a
load balancer's 500 would): nothing is kept under its key, so a retry with
the same key is worked on afresh.

Usage: stripe_standin.py --port-file FILE [--port N]; prints "stripe stand-in on
127.0.0.1:PORT" and writes PORT to FILE once listening.
"""
import argparse
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
mode = {"fail": None, "fail_count": None, "delay_ms": 0,
        "refund_status": None, "refund_polls": 0, "refund_final": "succeeded"}
polls_left = {}  # refund id -> GETs that still see it not final
requests_seen = []
intents = {}   # id -> intent
refunds = {}   # id -> refund
by_key = {}    # key -> {"params", "path", "status", "body", "pending"}


def rand(n=24):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def error(status, etype, message, code=None, param=None):
    e = {"type": etype, "message": message}
    if code:
        e["code"] = code
    if param:
        e["param"] = param
    if etype == "card_error":
        e["decline_code"] = "generic_decline"
    return status, {"error": e}


def metadata_of(form):
    md = {}
    for k, v in form.items():
        if k.startswith("metadata[") and k.endswith("]"):
            md[k[9:-1]] = v[-1]
    return md


def create_intent(form):
    amount = form.get("amount", [None])[-1]
    currency = form.get("currency", [None])[-1]
    if amount is None:
        return error(400, "invalid_request_error",
                     "Missing required param: amount.",
                     "parameter_missing", "amount")
    if currency is None:
        return error(400, "invalid_request_error",
                     "Missing required param: currency.",
                     "parameter_missing", "currency")
    if not amount.isdigit() or int(amount) < 1:
        return error(400, "invalid_request_error",
                     "Invalid integer: " + amount, "parameter_invalid_integer",
                     "amount")
    if len(currency) != 3 or not currency.isalpha():
        return error(400, "invalid_request_error",
                     "Invalid currency: " + currency, "invalid_currency",
                     "currency")
    pi = "pi_" + rand()
    intent = {
        "id": pi, "object": "payment_intent", "amount": int(amount),
        "amount_received": 0, "currency": currency.lower(),
        "client_secret": pi + "_secret_" + rand(25),
        "metadata": metadata_of(form), "status": "requires_payment_method",
        "livemode": False, "created": int(time.time()),
    }
    if "automatic_payment_methods[enabled]" in form:
        intent["automatic_payment_methods"] = {"enabled": True}
    types = form.get("payment_method_types[]", [])
    intent["payment_method_types"] = types or ["card"]
    intents[pi] = intent
    return 200, intent


def create_refund(form):
    pi = form.get("payment_intent", [None])[-1]
    if pi is None:
        return error(400, "invalid_request_error",
                     "One of the following params should be provided for "
                     "this request: payment_intent or charge.",
                     "parameter_missing", "payment_intent")
    intent = intents.get(pi)
    if intent is None:
        return error(400, "invalid_request_error",
                     "No such payment_intent: '%s'" % pi, "resource_missing",
                     "payment_intent")
    done = sum(r["amount"] for r in refunds.values()
               if r["payment_intent"] == pi)
    left = intent["amount"] - done
    amount = form.get("amount", [None])[-1]
    amount = int(amount) if amount and amount.isdigit() else left
    if left <= 0:
        return error(400, "invalid_request_error",
                     "Charge for PaymentIntent %s has already been refunded."
                     % pi, "charge_already_refunded")
    if amount > left:
        return error(400, "invalid_request_error",
                     "Refund amount is greater than the unrefunded amount.",
                     "amount_too_large", "amount")
    re = "re_" + rand()
    refund = {
        "id": re, "object": "refund", "amount": amount,
        "currency": intent["currency"], "payment_intent": pi,
        "metadata": metadata_of(form),
        "status": mode.get("refund_status") or "succeeded",
        "created": int(time.time()),
    }
    if refund["status"] != "succeeded":
        polls_left[re] = int(mode.get("refund_polls") or 0)
        refund["final"] = mode.get("refund_final") or "succeeded"
    refunds[re] = refund
    return 200, {k: v for k, v in refund.items() if k != "final"}


def get_refund(re):
    refund = refunds.get(re)
    if refund is None:
        return error(404, "invalid_request_error",
                     "No such refund: '%s'" % re, "resource_missing", "id")
    if re in polls_left:
        if polls_left[re] <= 0:
            refund["status"] = refund["final"]
            del polls_left[re]
        else:
            polls_left[re] -= 1
    return 200, {k: v for k, v in refund.items() if k != "final"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status, body, replayed=False):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_" + rand(14))
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/_standin/requests":
            with lock:
                return self.answer(200, requests_seen)
        if self.path == "/_standin/objects":
            with lock:
                return self.answer(200, {"intents": list(intents.values()),
                                         "refunds": list(refunds.values())})
        if self.path.startswith("/v1/refunds/"):
            auth = self.headers.get("Authorization", "")
            seen = {"method": "GET", "path": self.path,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "form": {}, "authorized": auth.startswith("Bearer sk_"),
                    "content_type": None, "replayed": False}
            with lock:
                if not seen["authorized"]:
                    s, b = error(401, "invalid_request_error",
                                 "You did not provide an API key.")
                else:
                    s, b = get_refund(urllib.parse.unquote(
                        self.path[len("/v1/refunds/"):]))
                seen["status"] = s
                requests_seen.append(seen)
            return self.answer(s, b)
        return self.answer(*error(404, "invalid_request_error",
                                  "Unrecognized request URL (GET: %s)."
                                  % self.path))

    def do_POST(self):
        raw = self.body()
        if self.path == "/_standin/mode":
            with lock:
                mode.update(json.loads(raw or b"{}"))
            return self.answer(200, mode)
        form = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
        key = self.headers.get("Idempotency-Key")
        auth = self.headers.get("Authorization", "")
        seen = {"method": "POST", "path": self.path, "idempotency_key": key,
                "form": {k: v[-1] for k, v in form.items()},
                "authorized": auth.startswith("Bearer sk_"),
                "content_type": self.headers.get("Content-Type")}
        status, out, replayed = self.work(form, key, auth)
        seen["status"] = status
        seen["replayed"] = replayed
        with lock:
            requests_seen.append(seen)
            delay = mode.get("delay_ms") or 0
        if delay:
            time.sleep(delay / 1000.0)
        with lock:  # answered: a retry with its key now replays it
            if key and isinstance(by_key.get(key), dict) and \
                    by_key[key].get("pending"):
                by_key[key]["pending"] = False
        try:
            self.answer(status, out, replayed)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def work(self, form, key, auth):
        """(status, body, replayed); the object is made before any delay."""
        if self.path not in ("/v1/payment_intents", "/v1/refunds"):
            s, b = error(404, "invalid_request_error",
                         "Unrecognized request URL (POST: %s)." % self.path)
            return s, b, False
        if not auth.startswith("Bearer sk_"):
            s, b = error(401, "invalid_request_error",
                         "You did not provide an API key.")
            return s, b, False
        params = sorted((k, tuple(v)) for k, v in form.items())
        with lock:
            if mode.get("fail") and (mode.get("fail_count") is None or
                                     mode["fail_count"] > 0):
                if mode.get("fail_count") is not None:
                    mode["fail_count"] -= 1
                f = int(mode["fail"])
                if f == 402:
                    s, b = error(402, "card_error", "Your card was declined.",
                                 "card_declined")
                elif f == 400:
                    s, b = error(400, "invalid_request_error",
                                 "Invalid request (told to fail).",
                                 "parameter_invalid_empty")
                else:
                    s, b = error(f, "api_error",
                                 "An unknown error occurred")
                return s, b, False
            if key:
                first = by_key.get(key)
                if isinstance(first, dict) and first.get("pending"):
                    s, b = error(409, "idempotency_error",
                                 "There is currently another in-progress "
                                 "request using this Stripe-Idempotency-Key"
                                 " and the same parameters.",
                                 "idempotency_key_in_use")
                    return s, b, False
                if isinstance(first, dict):
                    if first["params"] != params or first["path"] != self.path:
                        s, b = error(400, "idempotency_error",
                                     "Keys for idempotent requests can only "
                                     "be used with the same parameters they "
                                     "were first used with.")
                        return s, b, False
                    return first["status"], first["body"], True
            if self.path == "/v1/payment_intents":
                s, b = create_intent(form)
            else:
                s, b = create_refund(form)
            if key:
                by_key[key] = {"params": params, "path": self.path,
                               "status": s, "body": b,
                               "pending": bool(mode.get("delay_ms"))}
            return s, b, False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    print("stripe stand-in on 127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
