#!/usr/bin/env bash
# backup.sh DATA_DIR DEST: a backup of bookd's data dir, taken while bookd
# runs (or not), that restores to a consistent state (scripts/restore.sh;
# docs/operations.md "Backup and restore").
#   1. If a bookd holds DATA_DIR (the pid in DATA_DIR/LOCK, a process named
#      bookd that takes SIGUSR1; root, or its user), it is asked for a snapshot (SIGUSR1) and
#      the new snap-* file is awaited (BOOKD_BACKUP_SNAPSHOT_WAIT seconds,
#      60; --no-snapshot skips this): a restore then replays little. If
#      none comes, the snapshots that exist are taken.
#   2. bookd-backup copy DATA_DIR DEST.partial: DURABLE, snapshots, then
#      segments, the tail cut after its last whole record (wal/wal_backup.c
#      says why in that order); run again (up to 5 times) if a snapshot
#      removed segments meanwhile.
#   3. bookd-backup verify: the copy opens as bookd would open it.
#   4. MANIFEST (sha256 of every file, the source, the time, the tool's
#      version), then DEST.partial is renamed DEST: a DEST without
#      MANIFEST is never a backup.
# bookd-backup: $BOOKD_BACKUP_BIN, else this checkout's build/api/, else
# PATH. Every booking acknowledged before this script started is in DEST.
set -euo pipefail
snapshot=1
if [ "${1:-}" = --no-snapshot ]; then snapshot=0; shift; fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--no-snapshot] DATA_DIR DEST" >&2
  exit 2
fi
data=$1 dest=$2
here=$(cd "$(dirname "$0")" && pwd)
tool=${BOOKD_BACKUP_BIN:-}
if [ -z "$tool" ]; then
  if [ -x "$here/../build/api/bookd-backup" ]; then tool=$here/../build/api/bookd-backup
  else tool=$(command -v bookd-backup || true); fi
fi
[ -x "$tool" ] || { echo "backup.sh: no bookd-backup (set BOOKD_BACKUP_BIN)" >&2; exit 1; }
[ -d "$data" ] || { echo "backup.sh: $data: no such directory" >&2; exit 1; }
if [ -e "$dest" ] || [ -e "$dest.partial" ]; then
  echo "backup.sh: $dest or $dest.partial exists" >&2
  exit 1
fi

newest_snapshot() { (cd "$data" && ls snap-???????????????? 2>/dev/null | tail -1) || true; }

# 1. A snapshot now, if a bookd holds the data dir and takes SIGUSR1 (its
# binary has the handler's message). Another process, or a bookd from
# before SIGUSR1, is not signalled (SIGUSR1 would kill it).
if [ "$snapshot" = 1 ] && [ -s "$data/LOCK" ]; then
  pid=$(tr -dc 0-9 <"$data/LOCK")
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = bookd ] &&
     grep -aq 'SIGUSR1: snapshot' "/proc/$pid/exe" 2>/dev/null; then
    before=$(newest_snapshot)
    kill -USR1 "$pid"
    wait_s=${BOOKD_BACKUP_SNAPSHOT_WAIT:-60}
    for _ in $(seq 1 $((wait_s * 10))); do
      [ "$(newest_snapshot)" != "$before" ] && break
      sleep 0.1
    done
    now=$(newest_snapshot)
    if [ "$now" != "$before" ]; then echo "backup.sh: bookd (pid $pid) wrote $now"
    else echo "backup.sh: no new snapshot within ${wait_s} s; taking what exists" >&2; fi
  fi
fi

# 2. The copy (again while a snapshot removed segments under it).
rc=0
for try in 1 2 3 4 5; do
  rc=0
  "$tool" copy "$data" "$dest.partial" || rc=$?
  [ "$rc" -ne 75 ] && break
  echo "backup.sh: try $try: segments removed while copying; again" >&2
  rm -rf "$dest.partial"
done
if [ "$rc" -ne 0 ]; then rm -rf "$dest.partial"; exit 1; fi

# 3. The copy opens as bookd would open it.
if ! "$tool" verify "$dest.partial"; then
  echo "backup.sh: the copy does not verify; kept as $dest.partial" >&2
  exit 1
fi

# 4. MANIFEST, then the name.
(
  cd "$dest.partial"
  {
    echo "# bookd backup of $(cd "$data" && pwd) taken $(date -u +%Y-%m-%dT%H:%M:%SZ) by $("$tool" --version)"
    find . -maxdepth 1 -type f ! -name MANIFEST -printf '%f\n' | sort | xargs sha256sum
  } >MANIFEST
  sync -f . 2>/dev/null || sync
)
mv "$dest.partial" "$dest"
echo "backup.sh: $dest ($(du -sh "$dest" | cut -f1))"
