#!/usr/bin/env bash
# Secrets from files (issue 15, docs/operations.md "Secrets"): every secret
# NAME may come from NAME_FILE (its content, one trailing newline
# stripped):
#   - the service key, the anon key and the JWT secret from files (written
#     with a trailing newline) are the ones bookd checks: 200 with them, a
#     JWT signed with the file's secret accepted, one signed with the
#     secret and its newline refused;
#   - each of BOOKD_SERVICE_KEY_FILE, BOOKD_ANON_KEY_FILE,
#     BOOKD_JWT_SECRET_FILE, STRIPE_WEBHOOK_SECRET_FILE,
#     NOTIFY_WEBHOOK_SECRET_FILE and SMTP_URL_FILE is refused at start
#     (exit 2, a message naming the variable and the file) when the file is
#     group-readable, world-readable, missing or empty;
#   - a webhook signed with NOTIFY_WEBHOOK_SECRET_FILE's secret is verified
#     by tests/integration/notify_sink.py given that secret;
#   - NAME and NAME_FILE both set: the same value starts, different values
#     are refused;
#   - no secret's value is in bookd's output.
#
#   bash tests/integration/test_secrets.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) without bookd, curl, openssl or python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_secrets curl openssl python3

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM
SECRET=jwt-$RANDOM$RANDOM
umask 077
printf '%s\n' "$SVC" >"$tmp/svc"
printf '%s\n' "$ANON" >"$tmp/anon"
printf '%s\n' "$SECRET" >"$tmp/jwt"

# run_bookd LOG VAR=value...: bookd on free ports with these variables;
# sets pid and URL (empty when it did not start)
run_bookd() {
  local log=$1; shift
  rm -rf "$tmp/data"
  env -u DATABASE_URL -u BOOKD_SERVICE_KEY -u BOOKD_ANON_KEY -u BOOKD_JWT_SECRET \
    BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
    BOOKD_DATA_DIR="$tmp/data" "$@" "$bookd" >"$log" 2>&1 &
  pid=$!
  URL=$(started_line "$log" | grep -o 'http://[0-9.:]*')
}

# refused WHAT WANT VAR=value...: bookd exits 2 at once saying WANT
refused() {
  local what=$1 want=$2; shift 2
  env -u DATABASE_URL BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
    BOOKD_DATA_DIR="$tmp/data" "$@" timeout 20 "$bookd" >"$tmp/refused.log" 2>&1
  local rc=$?
  if [ $rc = 2 ] && grep -qF -- "$want" "$tmp/refused.log"; then
    ok "$what: refused: $(head -c 200 "$tmp/refused.log")"
  else
    bad "$what: exit $rc, wanted 2 and '$want': $(head -c 300 "$tmp/refused.log")"
  fi
}

code() { curl -s -o /dev/null -w '%{http_code}' "$URL$1" -H "Authorization: Bearer $2"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # jwt SUB SECRET
  local h p s exp=$(( $(date +%s) + 600 ))
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s","exp":%d}' "$1" "$exp" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$2" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

run_bookd "$tmp/files.log" BOOKD_SERVICE_KEY_FILE="$tmp/svc" \
  BOOKD_ANON_KEY_FILE="$tmp/anon" BOOKD_JWT_SECRET_FILE="$tmp/jwt"
if [ -z "$URL" ]; then
  bad "bookd with its secrets from files did not start: $(cat "$tmp/files.log")"
else
  check "service key from its file: admin status 200" test "$(code /v1/admin/status "$SVC")" = 200
  check "anon key from its file: listing 200" test "$(code '/v1/events?limit=1' "$ANON")" = 200
  check "a JWT signed with the file's secret: listing 200" \
    test "$(code '/v1/events?limit=1' "$(jwt c1 "$SECRET")")" = 200
  check "a JWT signed with the secret and its newline: 401" \
    test "$(code '/v1/events?limit=1' "$(jwt c1 "$SECRET
")")" = 401
  stop_pid
  if grep -qF -e "$SVC" -e "$ANON" -e "$SECRET" "$tmp/files.log"; then
    bad "a secret's value is in bookd's output"
  else
    ok "no secret's value in bookd's output"
  fi
fi

# NOTIFY_WEBHOOK_SECRET_FILE signs: the sink verifies with the file's
# secret (the demo's booking is the first notification)
HOOK=whsec_$(head -c 24 /dev/urandom | openssl base64 -A)
printf '%s\n' "$HOOK" >"$tmp/hook"
python3 "$here/notify_sink.py" --out "$tmp/sink" --secret "$HOOK" >"$tmp/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 1 100); do
  hook_port=$(sed -n 's/^sink: webhook on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/sink.log")
  [ -n "$hook_port" ] && break
  sleep 0.1
done
run_bookd "$tmp/hook.log" BOOKD_DEMO=1 NOTIFY_WEBHOOK_SECRET_FILE="$tmp/hook" \
  NOTIFY_WEBHOOK_URL="http://127.0.0.1:$hook_port/hooks"
for _ in $(seq 1 100); do
  [ -s "$tmp/sink/webhook.jsonl" ] && break
  sleep 0.1
done
stop_pid
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null
check "NOTIFY_WEBHOOK_SECRET_FILE: the webhook is signed with the file's secret (the sink verifies it)" \
  test -s "$tmp/sink/webhook.jsonl" -a "$(grep -c '"sig_ok":false' "$tmp/sink/webhook.jsonl")" = 0
check "NOTIFY_WEBHOOK_SECRET_FILE: the secret's value is not in bookd's output" \
  test "$(grep -cF "${HOOK#whsec_}" "$tmp/hook.log")" = 0

# the same value both ways starts; different values do not
run_bookd "$tmp/same.log" BOOKD_SERVICE_KEY="$SVC" BOOKD_SERVICE_KEY_FILE="$tmp/svc"
check "BOOKD_SERVICE_KEY and its file with the same value: starts" test -n "$URL"
stop_pid
refused "BOOKD_SERVICE_KEY and its file differ" \
  "BOOKD_SERVICE_KEY and BOOKD_SERVICE_KEY_FILE are both set, with different values" \
  BOOKD_SERVICE_KEY=other BOOKD_SERVICE_KEY_FILE="$tmp/svc"
refused "--jwt-secret and BOOKD_JWT_SECRET_FILE differ" \
  "BOOKD_JWT_SECRET and BOOKD_JWT_SECRET_FILE are both set" \
  BOOKD_JWT_SECRET=other BOOKD_JWT_SECRET_FILE="$tmp/jwt"

printf 'value\n' >"$tmp/group"; chmod 640 "$tmp/group"
printf 'value\n' >"$tmp/world"; chmod 604 "$tmp/world"
: >"$tmp/empty"
for name in BOOKD_SERVICE_KEY BOOKD_ANON_KEY BOOKD_JWT_SECRET \
            STRIPE_WEBHOOK_SECRET NOTIFY_WEBHOOK_SECRET SMTP_URL; do
  refused "${name}_FILE group-readable" \
    "${name}_FILE: $tmp/group is readable by its group (mode 640)" \
    "${name}_FILE=$tmp/group"
  refused "${name}_FILE world-readable" \
    "${name}_FILE: $tmp/world is readable by others (mode 604)" \
    "${name}_FILE=$tmp/world"
done
refused "a missing file" "BOOKD_JWT_SECRET_FILE: cannot read $tmp/none" \
  BOOKD_JWT_SECRET_FILE="$tmp/none"
refused "an empty file" "SMTP_URL_FILE: $tmp/empty is empty" SMTP_URL_FILE="$tmp/empty"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
