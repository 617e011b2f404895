#!/usr/bin/env bash
# logs_secrets.sh DIR: no secret, key, JWT, signature or card number in the
# logs the integration tests kept (DIR: <build>/test-logs, lib.sh
# keep_logs; ctest runs this after them as the fixture bookd_logs' cleanup).
# What it looks for: the tests' keys and secrets by their forms (svc-,
# anon-, jwt- with the random digits the tests give them; the docs' and
# examples' svc-key, anon-key, jwt-example, whsec_...), any JWT (eyJ...),
# "Bearer " with a token, a Stripe-Signature's v1= HMAC, a Stripe API key
# (sk_test_..., sk_live_...), a Standard Webhooks signature (v1,<base64 of
# a 32-byte HMAC-SHA256>), a URL with a password (smtp://user:pass@), the
# test card 4242 4242 4242 4242. The
# curl lines --demo prints on stdout ("  curl ... -H 'Authorization: Bearer
# KEY'") and its schedule page links ("  http://...#key=KEY&token=JWT")
# carry the keys on purpose (the demo's, or the ones it was given): they
# are not log lines and are left out.
#
# Exit 77 (skipped) when DIR holds no log.
set -uo pipefail
dir=${1:?usage: logs_secrets.sh DIR}
mapfile -t logs < <(find "$dir" -type f 2>/dev/null | sort)
if [ ${#logs[@]} = 0 ]; then
  echo "logs_secrets: no logs in $dir, skipped"
  exit 77
fi
patterns=(
  'svc-[0-9]{4,}' 'anon-[0-9]{4,}' 'jwt-[0-9]{4,}'
  'svc-key' 'anon-key' 'jwt-example' 'svc-backup-test' 'whsec_[A-Za-z0-9]+'
  'eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.'
  'Bearer +[A-Za-z0-9._~+/-]{4,}'
  'v1=[0-9a-f]{64}'
  'sk_(test|live)_[A-Za-z0-9]+'
  'v1,[A-Za-z0-9+/]{43}='
  '[a-z]+://[^/@ :"]+:[^/@ "]+@'
  '4242 ?4242 ?4242 ?4242'
)
passed=0 failed=0
for p in "${patterns[@]}"; do
  hits=$(grep -EHn -e "$p" "${logs[@]}" 2>/dev/null |
    grep -vE '^[^:]+:[0-9]+:  (curl |http://)' | head -5)
  if [ -n "$hits" ]; then
    failed=$((failed + 1))
    echo "FAIL /$p/ in the logs (value masked):"
    printf '%s\n' "$hits" | sed -E "s/$p/<SECRET>/g" | cut -c1-300
  else
    passed=$((passed + 1))
    echo "ok   /$p/ in none of ${#logs[@]} logs"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
