/*
 * proc_stats.h: the process' own figures from /proc (Linux), for the
 * process_* families of /metrics, named as Prometheus' client libraries
 * name them (process_resident_memory_bytes, ...). Read at each scrape.
 */
#ifndef BOOKD_PROC_STATS_H
#define BOOKD_PROC_STATS_H

#include <stdint.h>

struct proc_stats {
	double cpu_seconds;	   /* user + system */
	double start_time_seconds; /* Unix time */
	uint64_t resident_bytes, virtual_bytes;
	uint64_t open_fds, max_fds;
};

/* Fills out; 0, or -errno when /proc could not be read (out is then
 * zeroed where it could not). */
int proc_stats_read(struct proc_stats *out);

#endif
