/*
 * bookd_test.h: running the bookd executable as a child of a unit test
 * (test_bin_e2e*, test_docs_bin). bookd_test_find locates the binary,
 * bookd_test_spawn starts it in embedded mode with its output in a log
 * file, and bookd_test_wait reads that log until bookd's start-up line says
 * where it listens. The test stops it with kill and waitpid.
 */
#ifndef BOOKD_TEST_BOOKD_H
#define BOOKD_TEST_BOOKD_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Finds bookd: $BOOKD_BIN, else ../api/bookd beside this test's build
 * folder (build/tests). True if bin[size] names an executable. */
static inline bool bookd_test_find(char *bin, size_t size)
{
	const char *env = getenv("BOOKD_BIN");
	char self[2048];
	ssize_t n;

	if (env && *env) {
		snprintf(bin, size, "%s", env);
		return access(bin, X_OK) == 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	*strrchr(self, '/') = '\0'; /* build/tests */
	snprintf(bin, size, "%s/../api/bookd", self);
	return access(bin, X_OK) == 0;
}

/* Starts bin with argv (argv[0] first, NULL last) without DATABASE_URL
 * (embedded mode), its stdout and stderr appended to log_path (emptied
 * first unless append). Returns the child's pid or -errno. */
static inline pid_t bookd_test_spawn(const char *bin, char *const argv[],
				     const char *log_path, bool append)
{
	int fd = open(log_path,
		      O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
		      0644);
	pid_t pid;

	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		pid = -errno;
		close(fd);
		return pid;
	}
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		unsetenv("DATABASE_URL");
		execv(bin, argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

/* Copies the address after prefix in line (up to ", " or a newline) to
 * out[size]; false if it is empty or does not fit. */
static inline bool bookd_test_addr(const char *line, const char *prefix,
				   char *out, size_t size)
{
	size_t k;

	line += strlen(prefix);
	k = strcspn(line, ", \n");
	if (k == 0 || k >= size)
		return false;
	memcpy(out, line, k);
	out[k] = '\0';
	return true;
}

/* Waits, polling every 50 ms up to tries times, for start-up line number
 * *starts + 1 in log_path (a log appended to across restarts has one per
 * start) and copies the binary protocol's address from it to bin_addr and,
 * if http_addr is not NULL, the HTTP one to http_addr. Returns 0 (and
 * counts the line in *starts), -ECHILD if pid exited (the log is printed),
 * or -ETIMEDOUT. */
static inline int bookd_test_wait(pid_t pid, const char *log_path, int tries,
				  unsigned *starts, char *bin_addr,
				  size_t bin_size, char *http_addr,
				  size_t http_size)
{
	static const char bin_on[] = "binary protocol on ";
	static const char http_on[] = "HTTP on http://";

	for (int i = 0; i < tries; i++) {
		static char buf[1 << 20];
		FILE *f = fopen(log_path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		char *p = NULL, *q = buf;
		unsigned seen = 0;
		int st;

		if (f)
			fclose(f);
		buf[n] = '\0';
		while ((q = strstr(q, bin_on))) {
			p = q;
			q++;
			seen++;
		}
		if (seen > *starts && strchr(p, '\n')) {
			char *h = p;

			*starts = seen;
			while (h > buf && h[-1] != '\n')
				h--;
			h = strstr(h, http_on);
			if (http_addr && h && h < p)
				bookd_test_addr(h, http_on, http_addr, http_size);
			if (bookd_test_addr(p, bin_on, bin_addr, bin_size))
				return 0;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "bookd exited:\n%s\n", buf);
			return -ECHILD;
		}
		usleep(50 * 1000);
	}
	return -ETIMEDOUT;
}

#endif
