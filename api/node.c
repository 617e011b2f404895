/*
 * node.c: the core made durable by the write-ahead log (api/node.h).
 *
 * Start-up: the log opened and its tail checked (a torn tail is cut,
 * corruption before the tail stops start-up), the data dir checked to be
 * writable (a file made and removed: refused at start, not as failed
 * writes later), the newest snapshot whose checksum verifies read (wal/),
 * the core opened and parked, the snapshot loaded and every record after
 * it replayed, the core unparked, the log writer started, then the
 * snapshotter thread (snapshot_every). Progress and the time taken go to
 * stderr.
 *
 * Running: the core's log hook appends each entry to the log (any shard
 * thread may call it; the log takes many appenders) and returns its LSN.
 * Answers wait for that LSN to be durable (group commit: one fdatasync for
 * all the records of a batch).
 *
 * Snapshots: the core is parked (every entry handed to the log is then
 * applied, so the state is exactly the log up to its last LSN) just long
 * enough to fork; the child, a frozen copy-on-write image, serialises the
 * core into a pipe and exits, while the parent unparks at once and feeds
 * the pipe to the log's snapshot file (checksum, fsync, rename), so
 * bookings go on during the whole write (Redis BGSAVE). Each snapshot,
 * background or asked for, is a run of the job "snapshot" (jobs.h).
 */
#include "node.h"
#include "bookd_assert.h"
#include "evlog.h"
#include "entry.h"
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct node {
	core *core;
	wal *wal;
	bool quiet;
	uint64_t snapshot_every, snapshot_lsn;
	pthread_t snapshotter;
	bool snapshotter_started, stopping;
	pthread_mutex_t lock; /* stopping, and one snapshot at a time */
	pthread_cond_t wake;
};

void node_config_default(struct node_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = "./data";
	core_config_default(&cfg->core);
	cfg->sync = WAL_SYNC_FDATASYNC;
	cfg->snapshot_every = 1000000;
}

static int node_log(void *ctx, unsigned lane, const void *entry, size_t size,
		    uint64_t *lsn)
{
	node *n = ctx;
	int rc;

	(void)lane;
	ASSERT(size > 0); /* the core hands over whole entries */
	rc = wal_append(n->wal, entry, size, lsn);
	ASSERT(rc != 0 || *lsn > 0); /* appended: a position */
	return rc;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct replay {
	core *core;
	uint64_t count, bytes, lsn;
	int rc;
	char kind[96]; /* of the record that failed */
};

/* What an entry holds, for a message: its records' kinds, runs of one
 * kind counted ("series_generated+event_create*5000"). */
static void entry_kind(const void *payload, size_t size, char *out,
		       size_t out_size)
{
	struct core_rec rec;
	size_t pos = 0, used = 0;
	unsigned runs = 0;
	uint64_t run = 0;
	uint8_t type = 0;
	int rc;

	ASSERT(out_size > 48); /* room for one kind and its count */
	out[0] = '\0';
	for (;;) {
		rc = core_entry_next(payload, size, &pos, &rec);
		if (rc > 0 && run > 0 && rec.type == type) {
			run++;
			continue;
		}
		if (run > 0 && used + 48 < out_size) {
			used += (size_t)snprintf(out + used, out_size - used,
						 "%s%s", runs++ ? "+" : "",
						 core_rec_type_name(type));
			if (run > 1)
				used += (size_t)snprintf(out + used,
							 out_size - used,
							 "*%" PRIu64, run);
		}
		if (rc <= 0)
			break;
		type = rec.type;
		run = 1;
	}
	ASSERT(used < out_size);
	if (rc < 0 || runs == 0)
		snprintf(out + used, out_size - used, "%smalformed entry",
			 runs ? "+" : "");
}

static int replay_one(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct replay *r = ctx;
	int rc = core_replay(r->core, payload, size);

	ASSERT(r->rc == 0); /* replay stops at the first failure */
	if (rc) {
		r->rc = rc;
		r->lsn = lsn;
		entry_kind(payload, size, r->kind, sizeof(r->kind));
		return rc;
	}
	r->count++;
	r->bytes += size;
	return 0;
}

static int snapshot_locked(node *n);

/* The log creates its next segment and snapshots in the data dir while
 * running: a directory the process may open but not write into (another
 * owner, read-only mount) is refused now, with the reason, rather than as
 * failed writes later. */
static int data_dir_check(const char *dir, char *err, size_t err_size)
{
	char path[4096];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/.bookd-write-check.%ld", dir,
		     (long)getpid()) >= (int)sizeof(path)) {
		snprintf(err, err_size, "data dir %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, err_size,
			 "data dir %s is not writable: cannot create a file "
			 "in it: %s",
			 dir, strerror(-rc));
		return rc;
	}
	close(fd);
	unlink(path);
	return 0;
}

/* Takes a snapshot whenever the log grew by snapshot_every records. */
static void *snapshotter_main(void *arg)
{
	node *n = arg;

	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		struct timespec ts;
		struct wal_stats st;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&n->wake, &n->lock, &ts);
		if (n->stopping)
			break;
		wal_stats(n->wal, &st);
		if (st.appended_lsn - n->snapshot_lsn >= n->snapshot_every &&
		    snapshot_locked(n) != 0 && wal_error(n->wal) == 0)
			evlog(EVLOG_ERROR, "bookd: background snapshot failed");
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int node_open(const struct node_config *cfg, node **out, char *err,
	      size_t err_size)
{
	struct wal_config wcfg;
	struct core_config ccfg = cfg->core;
	struct replay rp = { 0 };
	uint64_t snap_lsn = 0;
	void *snap = NULL;
	size_t snap_size = 0;
	double t0 = now_s(), t_log, t_core, t_snap;
	node *n;
	int rc;

	ASSERT(cfg->wake_fd_count == 0 || cfg->wake_fds);
	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->quiet = cfg->quiet;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);

	wal_config_default(&wcfg);
	wcfg.dir = cfg->data_dir;
	wcfg.sync = cfg->sync;
	wcfg.cut_corrupt = cfg->cut_corrupt;
	wcfg.manual = cfg->manual_log;
	wcfg.syncs_in_flight = cfg->log_syncs;
	if (cfg->segment_size)
		wcfg.segment_size = cfg->segment_size;
	/* wal_open first: it creates the directory and takes its lock. */
	rc = wal_open(&wcfg, &n->wal, err, err_size);
	if (rc)
		goto out_free;
	rc = data_dir_check(cfg->data_dir, err, err_size);
	if (rc)
		goto out_close_wal;
	rc = wal_snapshot_load(cfg->data_dir, &snap_lsn, &snap, &snap_size, err,
			       err_size);
	t_log = now_s(); /* the log opened, the snapshot file read */
	if (rc == -ENOENT) {
		snap_lsn = 0;
	} else if (rc) {
		goto out_close_wal;
	}
	if (cfg->recover_stop_before) {
		/* The operator's way past a record that does not apply. */
		if (cfg->recover_stop_before <= snap_lsn) {
			snprintf(err, err_size,
				 "--recover-stop-before %" PRIu64 ": the "
				 "snapshot at LSN %" PRIu64 " already holds "
				 "that record",
				 cfg->recover_stop_before, snap_lsn);
			rc = -EINVAL;
			goto out_close_wal;
		}
		rc = wal_cut_before(n->wal, cfg->recover_stop_before, err,
				    err_size);
		if (rc)
			goto out_close_wal;
	}

	ccfg.log = node_log;
	ccfg.log_ctx = n;
	rc = core_open(&ccfg, &n->core);
	if (rc) {
		snprintf(err, err_size, "cannot start the core: %s",
			 strerror(-rc));
		goto out_close_wal;
	}
	t_core = now_s();
	rp.core = n->core;
	core_park(n->core);
	if (snap) {
		rc = core_snapshot_load(n->core, snap, snap_size);
		if (rc) {
			snprintf(err, err_size,
				 "snapshot at LSN %" PRIu64
				 " does not load: %s",
				 snap_lsn, strerror(-rc));
			core_unpark(n->core);
			goto out_close_core;
		}
	}
	t_snap = now_s();
	rc = wal_replay(n->wal, snap_lsn + 1, replay_one, &rp);
	core_unpark(n->core);
	if (rc) {
		uint64_t seg = 0, off = 0;

		if (rp.rc && wal_record_where(n->wal, rp.lsn, &seg, &off) == 0)
			snprintf(err, err_size,
				 "log record LSN %" PRIu64 " (%s/%020" PRIu64
				 ".wal+%" PRIu64 ", %s) does not apply: %s. "
				 "To start without it and every record after "
				 "it (set aside as *.cut in the data dir), "
				 "start once with --recover-stop-before %" PRIu64
				 " (docs/operations.md)",
				 rp.lsn, cfg->data_dir, seg, off, rp.kind,
				 strerror(-rp.rc), rp.lsn);
		else if (rp.rc)
			snprintf(err, err_size,
				 "log record LSN %" PRIu64 " (%s) does not "
				 "apply: %s. To start without it and every "
				 "record after it, start once with "
				 "--recover-stop-before %" PRIu64
				 " (docs/operations.md)",
				 rp.lsn, rp.kind, strerror(-rp.rc), rp.lsn);
		else
			snprintf(err, err_size, "log replay failed: %s",
				 strerror(-rc));
		goto out_close_core;
	}
	for (unsigned i = 0; i < cfg->wake_fd_count && rc == 0; i++)
		rc = wal_event_fd_add(n->wal, cfg->wake_fds[i],
				      cfg->wake_idle ? cfg->wake_idle[i]
						     : NULL);
	if (rc == 0)
		rc = wal_start(n->wal);
	if (rc) {
		snprintf(err, err_size, "cannot start the log: %s",
			 strerror(-rc));
		goto out_close_core;
	}
	n->snapshot_every = cfg->snapshot_every;
	n->snapshot_lsn = snap_lsn + rp.count;
	{
		char every[JOBS_SCHEDULE_SIZE];
		snprintf(every, sizeof(every), "every %" PRIu64 " log records",
			 n->snapshot_every);
		jobs_schedule(JOBS_SNAPSHOT, n->snapshot_every ? every : "off",
			      n->snapshot_every != 0, 0);
	}
	if (n->snapshot_every && !cfg->manual_log &&
	    pthread_create(&n->snapshotter, NULL, snapshotter_main, n) == 0)
		n->snapshotter_started = true;
	if (!n->quiet) {
		/* What start-up did, each step's time (the log's own lines
		 * say what it found in its segments). */
		char what[128];
		if (snap)
			snprintf(what, sizeof(what),
				 "snapshot at LSN %" PRIu64
				 " loaded (%zu bytes) "
				 "in %.3f s",
				 snap_lsn, snap_size, t_snap - t_core);
		else
			snprintf(what, sizeof(what), "no snapshot");
		evlog(EVLOG_INFO,
		      "bookd: started: log opened in %.3f s, core made in "
		      "%.3f s, %s, replayed %" PRIu64 " records (%" PRIu64
		      " bytes) in %.3f s; %.3f s in all",
		      t_log - t0, t_core - t_log, what, rp.count, rp.bytes,
		      now_s() - t_snap, now_s() - t0);
	}
	free(snap);
	*out = n;
	return 0;

out_close_core:
	core_close(n->core);
out_close_wal:
	wal_close(n->wal);
out_free:
	free(snap);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->wake);
	free(n);
	return rc;
}

void node_close(node *n)
{
	if (!n)
		return;
	if (n->snapshotter_started) {
		pthread_mutex_lock(&n->lock);
		n->stopping = true;
		pthread_cond_signal(&n->wake);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->snapshotter, NULL);
	}
	core_close(n->core); /* no more appends after this */
	wal_close(n->wal);   /* drains and syncs */
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->wake);
	free(n);
}

core *node_core(node *n) { return n->core; }
wal *node_wal(node *n) { return n->wal; }

bool node_durable(node *n, uint64_t lsn)
{
	return wal_durable_lsn(n->wal) >= lsn;
}

int node_wait_durable(node *n, uint64_t lsn)
{
	int rc = lsn ? wal_wait_durable(n->wal, lsn) : 0;

	ASSERT(rc != 0 || node_durable(n, lsn));
	return rc;
}

static int pipe_write(void *ctx, const void *buf, size_t size)
{
	int fd = *(int *)ctx;
	const char *p = buf;

	while (size) {
		ssize_t k = write(fd, p, size);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		ASSERT((size_t)k <= size);
		p += k;
		size -= (size_t)k;
	}
	return 0;
}

/* The child of the fork: a frozen copy of the parked core. It writes the
 * snapshot into the pipe and leaves without running any exit handler. It
 * keeps no other file open (not the log's lock, not the pipe's read end)
 * and dies with its parent, so a killed bookd leaves nothing behind that
 * holds the data directory. */
static _Noreturn void snapshot_child(node *n, pid_t parent, int fd)
{
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0u, 0);
	rc = core_snapshot_write(n->core, pipe_write, &fd);
	_exit(rc ? 1 : 0);
}

int node_snapshot(node *n)
{
	int rc;

	pthread_mutex_lock(&n->lock);
	rc = snapshot_locked(n);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

static int snapshot_take(node *n, char *msg, size_t msg_size);

/* A snapshot, as a run of the job "snapshot". */
static int snapshot_locked(node *n)
{
	char msg[JOBS_MESSAGE_SIZE] = "";
	struct jobs_run run = jobs_begin(JOBS_SNAPSHOT);
	int rc = snapshot_take(n, msg, sizeof(msg));

	if (rc && !msg[0])
		snprintf(msg, sizeof(msg), "snapshot failed: %s",
			 strerror(-rc));
	jobs_end(&run, rc, msg, 0);
	return rc;
}

static int snapshot_take(node *n, char *msg, size_t msg_size)
{
	struct wal_stats st;
	wal_snap *snap;
	double t0 = now_s(), t_parked;
	uint64_t size = 0;
	int fds[2], status, rc;
	pid_t pid;
	static char buf[1 << 20];

	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	core_park(n->core);
	wal_stats(n->wal, &st); /* parked: every appended entry is applied */
	rc = wal_snapshot_begin(n->wal, st.appended_lsn, &snap);
	pid_t parent = getpid();
	pid = -1;
	if (rc == 0) {
		pid = fork();
		if (pid < 0)
			rc = -errno; /* before unparking can change errno */
		else if (pid == 0)
			snapshot_child(n, parent, fds[1]);
		if (rc)
			wal_snapshot_abort(snap); /* begun: end it */
	}
	core_unpark(n->core);
	t_parked = now_s() - t0;
	close(fds[1]);
	if (rc) {
		close(fds[0]);
		return rc;
	}
	ASSERT(pid > 0);
	/* Bookings go on while the child serialises its copy. */
	for (;;) {
		ssize_t k = read(fds[0], buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = k < 0 ? -errno : 0;
			break;
		}
		size += (uint64_t)k;
		if (rc == 0)
			rc = wal_snapshot_write(snap, buf, (size_t)k);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = -EIO;
	if (rc) {
		wal_snapshot_abort(snap);
		return rc;
	}
	rc = wal_snapshot_commit(snap);
	if (rc == 0)
		n->snapshot_lsn = st.appended_lsn;
	if (rc == 0)
		snprintf(msg, msg_size,
			 "at LSN %" PRIu64 ": %" PRIu64
			 " bytes, parked %.1f ms",
			 st.appended_lsn, size, t_parked * 1e3);
	if (rc == 0 && !n->quiet)
		evlog(EVLOG_INFO,
		      "bookd: snapshot at LSN %" PRIu64 ": %" PRIu64 " bytes, "
		      "parked %.1f ms, %.1f ms in all",
		      st.appended_lsn, size, t_parked * 1e3,
		      (now_s() - t0) * 1e3);
	return rc;
}
