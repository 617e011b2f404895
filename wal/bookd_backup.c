/*
 * bookd_backup.c: bookd-backup, the log's side of scripts/backup.sh and
 * scripts/restore.sh (docs/operations.md "Backup and restore"):
 *
 *   bookd-backup copy DATA_DIR DEST   a consistent copy of a data dir that
 *                                     a running bookd may be writing
 *                                     (wal_backup: no lock taken)
 *   bookd-backup verify DIR           opens DIR as bookd would (newest
 *                                     snapshot, recovery without any cut,
 *                                     replay after it) and prints what
 *                                     it holds; exit 1 if bookd would
 *                                     refuse it. Not on a live data dir
 *                                     (its LOCK: -EBUSY).
 *
 * Exit 0, 1 (failed), 2 (usage), 75 (copy: EX_TEMPFAIL, segments were
 * removed while copying: run again).
 */
#include "bookd_version.h"
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_AGAIN 75

static int count_record(void *ctx, uint64_t lsn, const void *payload,
			size_t size)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

static int copy(const char *dir, const char *dst)
{
	struct wal_backup_info info;
	char err[512] = "";
	int rc = wal_backup(dir, dst, &info, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "bookd-backup: copy %s to %s: %s\n", dir, dst,
			err[0] ? err : strerror(-rc));
		return rc == -EAGAIN ? EXIT_AGAIN : 1;
	}
	printf("bookd-backup: copied %s to %s: %" PRIu32
	       " snapshot(s), newest at LSN %" PRIu64 "; %" PRIu32
	       " segment(s), records %" PRIu64 "..%" PRIu64
	       " (DURABLE said %" PRIu64 " when the copy began); %.1f MiB\n",
	       dir, dst, info.snapshot_count, info.snapshot_lsn,
	       info.segment_count, info.first_lsn, info.last_lsn,
	       info.durable_lsn, (double)info.bytes / (1 << 20));
	return 0;
}

static int verify(const char *dir)
{
	struct wal_config cfg;
	wal *w;
	void *snap = NULL;
	size_t snap_size = 0;
	uint64_t snap_lsn = 0, count = 0;
	char err[512] = "";
	int rc, had_lock;
	char lock[4096];

	rc = wal_snapshot_load(dir, &snap_lsn, &snap, &snap_size, err,
			       sizeof(err));
	free(snap);
	if (rc && rc != -ENOENT) {
		fprintf(stderr, "bookd-backup: verify %s: %s\n", dir, err);
		return 1;
	}
	snprintf(lock, sizeof(lock), "%s/LOCK", dir);
	had_lock = access(lock, F_OK) == 0;
	wal_config_default(&cfg);
	cfg.dir = dir;
	rc = wal_open(&cfg, &w, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "bookd-backup: verify %s: %s\n", dir, err);
		return 1;
	}
	rc = wal_replay(w, snap_lsn + 1, count_record, &count);
	wal_close(w);
	if (!had_lock)
		unlink(lock);
	if (rc) {
		fprintf(stderr, "bookd-backup: verify %s: replay: %s\n", dir,
			strerror(-rc));
		return 1;
	}
	printf("bookd-backup: %s verifies: snapshot at LSN %" PRIu64
	       " (%zu bytes), then %" PRIu64 " record(s) replay\n",
	       dir, snap_lsn, snap_size, count);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("bookd-backup %s (%s)\n", BOOKD_VERSION,
		       BOOKD_BUILD_TYPE);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "copy") == 0)
		return copy(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return verify(argv[2]);
	fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
		"usage: bookd-backup copy DATA_DIR DEST | verify DIR | "
		"--version\n"
		"  copy    a consistent copy of a data dir bookd may be "
		"writing (DEST must not exist)\n"
		"  verify  open DIR as bookd would, without cutting anything\n"
		"docs/operations.md \"Backup and restore\"\n");
	return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
