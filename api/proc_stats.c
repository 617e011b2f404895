/*
 * proc_stats.c: proc_stats_read (proc_stats.h) from /proc/self/stat (CPU
 * ticks, start ticks since boot, virtual size, resident pages), /proc/stat
 * (boot time), /proc/self/fd (open descriptors) and RLIMIT_NOFILE, as
 * Prometheus' client libraries read them.
 */
#include "proc_stats.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Boot time (Unix seconds) from /proc/stat's btime line; 0 if none. */
static uint64_t boot_time(void)
{
	char line[256];
	unsigned long long bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static int read_stat(struct proc_stats *out)
{
	char buf[1024];
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	size_t n;
	char *p;
	FILE *f = fopen("/proc/self/stat", "re");

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* after "pid (comm)", which may hold spaces and parentheses: field 3
	 * (state) on; utime is 14, stime 15, starttime 22, vsize 23, rss 24 */
	p = strrchr(buf, ')');
	if (!p || tck <= 0 || page <= 0)
		return -EINVAL;
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
		   "%*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) != 5)
		return -EINVAL;
	out->cpu_seconds = (double)(utime + stime) / (double)tck;
	out->start_time_seconds =
		(double)boot_time() + (double)start / (double)tck;
	out->virtual_bytes = vsize;
	out->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	return 0;
}

int proc_stats_read(struct proc_stats *out)
{
	struct rlimit rl;
	struct dirent *e;
	DIR *d;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_stat(out);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out->max_fds = rl.rlim_cur;
	d = opendir("/proc/self/fd");
	if (!d)
		return rc ? rc : -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			out->open_fds++;
	closedir(d);
	if (out->open_fds > 0)
		out->open_fds--; /* the directory's own descriptor */
	return rc;
}
