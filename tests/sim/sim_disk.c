/*
 * sim_disk.c: the simulator's disk and clock (design and limits: sim.h).
 *
 * Each file the log writes has, while it has unsynced writes, an entry
 * here keyed by device and inode (fds are reused; a file is not): an fd of
 * our own on it (opened through /proc/self/fd, read-write, to write the
 * file later even if the log closed its own) and its writes in order, each a copy. fdatasync copies them
 * into the file with the real pwrite, in order, and drops the entry. A
 * crash walks the entries and, per file, keeps none of the writes, a
 * prefix of them cut at a random byte (a torn write), or each 4 KiB page
 * they touched with probability 1/2 (as the page cache held it: the file's
 * page with every write into it applied). Everything is decided by the
 * seed's generator, in the log's own (single-threaded) order of calls.
 */
#include "sim.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIM_FILE_COUNT_MAX 32
#define SIM_PAGE_SIZE 4096
#define SIM_SLOW_SYNC_NS_MAX (800ull * 1000 * 1000)
#define SIM_SYNC_NS (200ull * 1000) /* an fdatasync's usual time */

const char *const sim_fault_names[SIM_FAULT_COUNT] = {
	[SIM_FAULT_CRASH] = "crash between turns",
	[SIM_FAULT_CRASH_IO] = "crash at an I/O",
	[SIM_FAULT_SYNC_EIO] = "fdatasync EIO",
	[SIM_FAULT_WRITE_ENOSPC] = "pwrite ENOSPC",
	[SIM_FAULT_ALLOC_ENOSPC] = "fallocate ENOSPC",
	[SIM_FAULT_SHORT_WRITE] = "short pwrite",
	[SIM_FAULT_SLOW_SYNC] = "slow fdatasync",
	[SIM_FAULT_TORN] = "crash: torn unsynced write",
	[SIM_FAULT_PAGES] = "crash: some unsynced pages kept",
	[SIM_FAULT_BIT_FLIP] = "bit flip in synced data",
	[SIM_FAULT_CLOCK_JUMP] = "clock jump ahead",
	[SIM_FAULT_CLOCK_BACK] = "clock jump back",
};
uint64_t sim_fault_counts[SIM_FAULT_COUNT];

/* ---- trace and clock ---- */

static uint64_t trace_hash = UINT64_C(0xcbf29ce484222325);
static uint64_t clock_ns = UINT64_C(1000000000);

void sim_trace(uint64_t v)
{
	trace_hash ^= v;
	trace_hash *= UINT64_C(0x100000001b3);
	trace_hash ^= trace_hash >> 29;
}

uint64_t sim_trace_hash(void) { return trace_hash; }

void sim_trace_reset(void)
{
	trace_hash = UINT64_C(0xcbf29ce484222325);
	clock_ns = UINT64_C(1000000000);
}

uint64_t sim_clock_ns(void) { return clock_ns; }

void sim_clock_advance(uint64_t ns) { clock_ns += ns; }

/* ---- unsynced writes ---- */

struct sim_write {
	uint64_t off;
	size_t size;
	uint8_t *data;
};

struct sim_file {
	dev_t dev;
	ino_t ino;
	int fd; /* our dup */
	struct sim_write *w;
	uint32_t count, cap;
};

static struct sim_file files[SIM_FILE_COUNT_MAX];
static uint32_t file_count;
static struct sim_rng *rng;
static struct sim_disk_rates rates;
static bool faults_on, crashed, failed;
static uint64_t io_count, crash_at;

static void die(const char *what)
{
	fprintf(stderr, "sim: disk: %s: %s\n", what, strerror(errno));
	exit(2);
}

static struct sim_file *file_of(int fd, bool create)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return NULL;
	for (uint32_t i = 0; i < file_count; i++)
		if (files[i].dev == st.st_dev && files[i].ino == st.st_ino)
			return &files[i];
	if (!create)
		return NULL;
	if (file_count == SIM_FILE_COUNT_MAX) {
		errno = EMFILE;
		die("too many files with unsynced writes");
	}
	struct sim_file *f = &files[file_count++];
	memset(f, 0, sizeof(*f));
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	/* Our own fd, readable too (a snapshot's is write-only), also for
	 * a file renamed or removed since. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	f->fd = open(path, O_RDWR | O_CLOEXEC);
	if (f->fd < 0)
		die("reopen");
	return f;
}

static void file_forget(struct sim_file *f)
{
	for (uint32_t i = 0; i < f->count; i++)
		free(f->w[i].data);
	free(f->w);
	close(f->fd);
	*f = files[--file_count];
}

static void real_write(int fd, const void *buf, size_t size, uint64_t off)
{
	const uint8_t *p = buf;

	while (size > 0) {
		ssize_t k = pwrite(fd, p, size, (off_t)off);
		if (k <= 0)
			die("pwrite into the platter");
		p += k;
		off += (uint64_t)k;
		size -= (size_t)k;
	}
}

/* One more I/O: true if the process dies at it (or died before). */
static bool io_dies(void)
{
	io_count++;
	if (!crashed && crash_at && io_count >= crash_at) {
		crashed = true;
		crash_at = 0;
		sim_fault_counts[SIM_FAULT_CRASH_IO]++;
		sim_trace(0xc4a5 ^ io_count);
	}
	return crashed;
}

static ssize_t sim_pwrite(int fd, const void *buf, size_t size, off_t off)
{
	struct sim_file *f;

	if (io_dies()) {
		errno = EIO;
		return -1;
	}
	if (faults_on && sim_chance(rng, rates.write_enospc)) {
		sim_fault_counts[SIM_FAULT_WRITE_ENOSPC]++;
		sim_trace(0xe05c);
		failed = true;
		errno = ENOSPC;
		return -1;
	}
	if (faults_on && size > 1 && sim_chance(rng, rates.short_write)) {
		sim_fault_counts[SIM_FAULT_SHORT_WRITE]++;
		size = 1 + sim_below(rng, (uint32_t)(size - 1));
		sim_trace(0x5407 ^ size);
	}
	f = file_of(fd, true);
	if (f->count == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 16;
		f->w = realloc(f->w, f->cap * sizeof(*f->w));
		if (!f->w)
			die("realloc");
	}
	struct sim_write *w = &f->w[f->count++];
	w->off = (uint64_t)off;
	w->size = size;
	w->data = malloc(size);
	if (!w->data)
		die("malloc");
	memcpy(w->data, buf, size);
	return (ssize_t)size;
}

static int sim_fdatasync(int fd)
{
	struct sim_file *f;

	if (io_dies()) {
		errno = EIO;
		return -1;
	}
	if (faults_on && sim_chance(rng, rates.sync_eio)) {
		/* The kernel may have written some of it, or not: the data
		 * stays unsynced, for the crash to decide. */
		sim_fault_counts[SIM_FAULT_SYNC_EIO]++;
		sim_trace(0xe10);
		failed = true;
		errno = EIO;
		return -1;
	}
	if (faults_on && sim_chance(rng, rates.slow_sync)) {
		uint64_t ns = sim_rnd(rng) % SIM_SLOW_SYNC_NS_MAX;
		sim_fault_counts[SIM_FAULT_SLOW_SYNC]++;
		sim_trace(0x5105 ^ ns);
		sim_clock_advance(ns);
	}
	sim_clock_advance(SIM_SYNC_NS);
	f = file_of(fd, false);
	if (f) {
		for (uint32_t i = 0; i < f->count; i++)
			real_write(f->fd, f->w[i].data, f->w[i].size,
				   f->w[i].off);
		file_forget(f);
	}
	return 0;
}

static int sim_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (io_dies()) {
		errno = EIO;
		return -1;
	}
	if (faults_on && sim_chance(rng, rates.alloc_enospc)) {
		sim_fault_counts[SIM_FAULT_ALLOC_ENOSPC]++;
		sim_trace(0xa105c);
		failed = true;
		errno = ENOSPC;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static uint64_t sim_now_ns(void) { return clock_ns; }

static const struct wal_syscalls sim_syscalls = {
	.pwrite = sim_pwrite,
	.fdatasync = sim_fdatasync,
	.fallocate = sim_fallocate,
	.now_ns = sim_now_ns,
};

void sim_disk_start(struct sim_rng *r, const struct sim_disk_rates *rt)
{
	rng = r;
	rates = *rt;
	faults_on = crashed = failed = false;
	io_count = crash_at = 0;
	wal_set_syscalls(&sim_syscalls);
}

void sim_disk_stop(void)
{
	while (file_count)
		file_forget(&files[0]);
	wal_set_syscalls(NULL);
}

void sim_disk_faults(bool on) { faults_on = on; }

void sim_disk_arm_crash(uint64_t count_from_now)
{
	crash_at = count_from_now ? io_count + count_from_now : 0;
}

bool sim_disk_crashed(void) { return crashed; }

void sim_disk_crash_now(void)
{
	if (!crashed)
		sim_fault_counts[SIM_FAULT_CRASH]++;
	crashed = true;
	crash_at = 0;
}

bool sim_disk_failed(void) { return failed; }

uint64_t sim_disk_io_count(void) { return io_count; }

/* The page cache's view of page pg of f: the file's bytes with every
 * write into the page applied, in order. */
static void page_image(struct sim_file *f, uint64_t pg, uint8_t *out)
{
	uint64_t start = pg * SIM_PAGE_SIZE;
	ssize_t k = pread(f->fd, out, SIM_PAGE_SIZE, (off_t)start);

	if (k < 0)
		die("pread");
	memset(out + k, 0, SIM_PAGE_SIZE - (size_t)k);
	for (uint32_t i = 0; i < f->count; i++) {
		const struct sim_write *w = &f->w[i];
		uint64_t a = w->off > start ? w->off : start;
		uint64_t b = w->off + w->size;
		if (b > start + SIM_PAGE_SIZE)
			b = start + SIM_PAGE_SIZE;
		if (a < b)
			memcpy(out + (a - start), w->data + (a - w->off),
			       b - a);
	}
}

/* The end of f's data: its size, or the end of its last write there. */
static uint64_t file_end(struct sim_file *f)
{
	struct stat st;
	uint64_t end;

	if (fstat(f->fd, &st) != 0)
		die("fstat");
	end = (uint64_t)st.st_size;
	for (uint32_t i = 0; i < f->count; i++)
		if (f->w[i].off + f->w[i].size > end)
			end = f->w[i].off + f->w[i].size;
	return end;
}

static void crash_file(struct sim_file *f)
{
	uint32_t how = sim_below(rng, 3);

	sim_trace(0xc0 ^ how ^ (uint64_t)f->count << 8);
	if (how == 0 || f->count == 0)
		return; /* every unsynced write lost */
	if (how == 1) {
		/* A prefix of the writes, the last one torn. */
		uint32_t keep = sim_below(rng, f->count);
		const struct sim_write *w = &f->w[keep];
		size_t part = sim_below(rng, (uint32_t)w->size + 1);

		sim_fault_counts[SIM_FAULT_TORN]++;
		for (uint32_t i = 0; i < keep; i++)
			real_write(f->fd, f->w[i].data, f->w[i].size,
				   f->w[i].off);
		if (part)
			real_write(f->fd, w->data, part, w->off);
		sim_trace((uint64_t)keep << 32 ^ part);
		return;
	}
	/* Some pages, each as the page cache held it. */
	static uint8_t page[SIM_PAGE_SIZE];
	uint64_t end = file_end(f), kept = 0;
	uint8_t *touched;
	uint64_t pages = (end + SIM_PAGE_SIZE - 1) / SIM_PAGE_SIZE;

	touched = calloc(pages ? pages : 1, 1);
	if (!touched)
		die("calloc");
	for (uint32_t i = 0; i < f->count; i++)
		for (uint64_t p = f->w[i].off / SIM_PAGE_SIZE;
		     p * SIM_PAGE_SIZE < f->w[i].off + f->w[i].size; p++)
			touched[p] = 1;
	sim_fault_counts[SIM_FAULT_PAGES]++;
	for (uint64_t p = 0; p < pages; p++) {
		if (!touched[p] || sim_below(rng, 2))
			continue;
		page_image(f, p, page);
		uint64_t n = end - p * SIM_PAGE_SIZE;
		real_write(f->fd, page, n < SIM_PAGE_SIZE ? n : SIM_PAGE_SIZE,
			   p * SIM_PAGE_SIZE);
		kept++;
	}
	sim_trace(kept);
	free(touched);
}

void sim_disk_after_crash(void)
{
	/* Files in the order they were first written: deterministic. */
	for (uint32_t i = 0; i < file_count; i++)
		crash_file(&files[i]);
	while (file_count)
		file_forget(&files[file_count - 1]);
	crashed = failed = false;
	crash_at = 0;
}
