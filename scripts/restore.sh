#!/usr/bin/env bash
# restore.sh BACKUP NEW_DATA_DIR: a backup made by scripts/backup.sh into
# a data dir bookd starts on (docs/operations.md "Backup and restore"):
# its MANIFEST's checksums checked, the files copied into
# NEW_DATA_DIR.partial (NEW_DATA_DIR must not exist or be empty),
# bookd-backup verify run on it (it opens as bookd would, nothing cut),
# then renamed NEW_DATA_DIR. Start bookd on it with --data-dir (or
# BOOKD_DATA_DIR); under systemd stop bookd first and restore into
# /var/lib/bookd's target (docs/operations.md).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BACKUP NEW_DATA_DIR" >&2
  exit 2
fi
backup=$1 dest=$2
here=$(cd "$(dirname "$0")" && pwd)
tool=${BOOKD_BACKUP_BIN:-}
if [ -z "$tool" ]; then
  if [ -x "$here/../build/api/bookd-backup" ]; then tool=$here/../build/api/bookd-backup
  else tool=$(command -v bookd-backup || true); fi
fi
[ -x "$tool" ] || { echo "restore.sh: no bookd-backup (set BOOKD_BACKUP_BIN)" >&2; exit 1; }
[ -f "$backup/MANIFEST" ] || { echo "restore.sh: $backup has no MANIFEST: not a finished backup" >&2; exit 1; }
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "restore.sh: $dest is not empty" >&2
  exit 1
fi
if ! (cd "$backup" && grep -v '^#' MANIFEST | sha256sum --quiet -c -); then
  echo "restore.sh: $backup: checksums do not match MANIFEST" >&2
  exit 1
fi
rm -rf "$dest.partial"
mkdir -m 0700 "$dest.partial"
(cd "$backup" && grep -v '^#' MANIFEST | awk '{print $2}') | while read -r f; do
  cp --preserve=mode "$backup/$f" "$dest.partial/$f"
done
sync -f "$dest.partial" 2>/dev/null || sync
"$tool" verify "$dest.partial"
[ -d "$dest" ] && rmdir "$dest"
mv "$dest.partial" "$dest"
echo "restore.sh: restored $backup into $dest; start bookd with --data-dir $dest"
