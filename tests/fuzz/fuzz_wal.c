/*
 * fuzz_wal.c: libFuzzer target for log recovery (wal_open + wal_replay), the
 * code that reads whatever a crash, a torn write or a bad disk left behind.
 * The input is the beginning of a segment (the rest of the 128 KiB segment
 * is zeros, as preallocation leaves it); any bytes: never a crash, never a
 * read out of bounds; a damaged log opens cut or is refused with an error.
 * The segment lives under /dev/shm when it exists, so fsync costs nothing;
 * the directory is removed at exit.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT_SIZE WAL_SEGMENT_SIZE_MIN

static char dir[64];
static uint8_t segment[SEGMENT_SIZE];

static int count_record(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	(void)lsn, (void)p;
	if (size > WAL_RECORD_SIZE_MAX)
		abort(); /* replay must never hand out an oversized record */
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Removes what the previous input (and the log) left in dir. */
static void clean(void)
{
	static const char *const names[] = {
		"00000000000000000001.wal",
		"00000000000000000001.wal.cut",
		"next.tmp",
		"LOCK",
		"DURABLE",
	};
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

static void remove_dir(void)
{
	clean();
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wal_config cfg;
	char path[128], err[256];
	uint64_t records = 0;
	wal *w;
	int fd;

	if (!dir[0]) {
		strcpy(dir, access("/dev/shm", W_OK) == 0
				    ? "/dev/shm/fuzz_wal.XXXXXX"
				    : "/tmp/fuzz_wal.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	clean();
	if (size > SEGMENT_SIZE)
		size = SEGMENT_SIZE;
	memset(segment, 0, sizeof(segment));
	memcpy(segment, data, size);
	snprintf(path, sizeof(path), "%s/00000000000000000001.wal", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 ||
	    write(fd, segment, sizeof(segment)) != (ssize_t)sizeof(segment))
		abort();
	close(fd);

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEGMENT_SIZE;
	cfg.cut_corrupt = size % 2; /* both policies */
	if (wal_open(&cfg, &w, err, sizeof(err)) == 0) {
		/* A replay may stop with an error; it must not crash. */
		(void)wal_replay(w, 1, count_record, &records);
		wal_close(w);
	}
	return 0;
}
