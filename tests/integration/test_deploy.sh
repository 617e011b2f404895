#!/usr/bin/env bash
# test_deploy: deploy/bookd.service.in, as deploy/install.cmake writes it
# (ExecStart here the bookd of this build), passes `systemd-analyze
# verify`, and keeps what docs/operations.md promises of it: Type=notify
# with a watchdog, the data dir as StateDirectory, the hardening, the
# secrets as credentials, and a SystemCallFilter that lets io_uring
# through.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
test_setup test_deploy systemd-analyze
unit=$tmp/bookd.service
sed -e "s|@BOOKD_BINDIR@|$(dirname "$bookd")|" \
    -e "s|@BOOKD_DOCDIR@|$lib_root/docs|" \
    "$lib_root/deploy/bookd.service.in" >"$unit"

if out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify: clean"
else
  printf '%s\n' "$out"; bad "systemd-analyze verify"
fi
for line in Type=notify WatchdogSec=30s StateDirectory=bookd \
             DynamicUser=yes LimitNOFILE=1048576 ProtectSystem=strict \
             ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
             EnvironmentFile=/etc/bookd/bookd.env \
             'Environment=BOOKD_DATA_DIR=%S/bookd' \
             'Environment=BOOKD_SERVICE_KEY_FILE=%d/service_key' \
             SystemCallFilter=@system-service; do
  check "$line" grep -qx -- "$line" "$unit"
done
check "no secret in the unit (only *_FILE)" \
  bash -c "! grep -Eq '^Environment=(BOOKD_SERVICE_KEY|BOOKD_ANON_KEY|BOOKD_JWT_SECRET|STRIPE_WEBHOOK_SECRET)=' '$unit'"
# io_uring must pass the unit's filter: its three system calls in one of
# @system-service's groups.
allowed=$(systemd-analyze syscall-filter @system-service 2>/dev/null |
  sed -n 's/^ *@\([a-z-]*\)$/\1/p' | while read -r g; do
    systemd-analyze syscall-filter "@$g"; done)
for sc in io_uring_setup io_uring_enter io_uring_register fork \
          sync_file_range fallocate close_range eventfd2 prctl; do
  check "@system-service allows $sc" grep -qw "$sc" <<<"$allowed"
done
# The example env file names every variable `bookd --help` lists (a
# secret by its *_FILE form).
for v in $("$bookd" --help 2>&1 | grep -o '\[[A-Z_]*\]' | tr -d '[]'); do
  check "bookd.env.example names $v" \
    grep -Eq "^#?$v(_FILE)?=" "$lib_root/deploy/bookd.env.example"
done

# ... the variables its text names besides (BOOKD_LOG_FORMAT=...) ...
for v in $("$bookd" --help 2>&1 | grep -o '\bBOOKD_[A-Z_]*=' | tr -d = | sort -u); do
  check "bookd.env.example names $v" grep -Eq "^#?$v=" "$lib_root/deploy/bookd.env.example"
done
# ... and every secret `bookd --help` lists, in its *_FILE form, in both.
for v in $("$bookd" --help 2>&1 | sed -n '/The secrets:/,$p' |
           grep -o '[A-Z][A-Z_]*[A-Z]' | grep -v '^NAME' | sort -u); do
  check "bookd.env.example names ${v}_FILE" \
    grep -q "^#\?${v}_FILE=" "$lib_root/deploy/bookd.env.example"
  check "the unit has a line for ${v}_FILE" grep -q "${v}_FILE=%d/" "$unit"
done

echo "test_deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
