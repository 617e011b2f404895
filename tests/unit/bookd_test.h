/*
 * bookd_test.h: running the bookd executable as a child of a unit test
 * (test_bin_e2e*, test_docs_bin). bookd_test_find locates the binary,
 * bookd_test_spawn starts it in embedded mode with its output in a log
 * file, and bookd_test_wait reads that log until bookd's start-up line says
 * where it listens. The test stops it with kill and waitpid.
 * bookd_test_connect opens a TCP connection to it, bookd_test_http sends
 * one HTTP request on one and reads its answer (bookd_test_read_to_close,
 * which test_net uses too, reads what a server says until it closes).
 */
#ifndef BOOKD_TEST_BOOKD_H
#define BOOKD_TEST_BOOKD_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
		      O_WRONLY | O_CREAT | O_CLOEXEC |
			      (append ? O_APPEND : O_TRUNC),
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
				bookd_test_addr(h, http_on, http_addr,
						http_size);
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

/* A TCP connection to addr ("127.0.0.1:port", as bookd_test_wait gives
 * it): its fd, or -1. */
static inline int bookd_test_connect(const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(addr, ':');
	char host[64];
	int fd;

	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads from fd into buf[0..size) until the peer closes the connection,
 * buf is full or nothing came for timeout_ms; NUL-terminates what was read
 * (size > 0). The number of bytes read. */
static inline size_t bookd_test_read_to_close(int fd, char *buf, size_t size,
					      int timeout_ms)
{
	size_t have = 0;

	while (have < size - 1) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t k;
		if (poll(&pf, 1, timeout_ms) <= 0)
			break;
		k = recv(fd, buf + have, size - 1 - have, 0);
		if (k <= 0)
			break;
		have += (size_t)k;
	}
	buf[have] = '\0';
	return have;
}

/* Sends the whole HTTP request req[0..n) to bookd's HTTP listener at
 * addr ("127.0.0.1:port", as bookd_test_wait gives it) on a connection of
 * its own, and reads the answer until bookd closes it (5 s at most
 * between reads; the request should say Connection: close) into
 * ans[0..ans_size), NUL-terminated. The answer's status, or -1. */
static inline int bookd_test_http(const char *addr, const void *req, size_t n,
				  char *ans, size_t ans_size)
{
	const char *p = req;
	size_t sent = 0;
	int fd, st = -1;

	if (ans_size == 0)
		return -1;
	ans[0] = '\0';
	fd = bookd_test_connect(addr);
	if (fd < 0)
		return -1;
	while (sent < n) {
		ssize_t k = send(fd, p + sent, n - sent, MSG_NOSIGNAL);
		if (k <= 0)
			break;
		sent += (size_t)k;
	}
	if (sent == n)
		bookd_test_read_to_close(fd, ans, ans_size, 5000);
	close(fd);
	if (sscanf(ans, "HTTP/1.1 %d", &st) != 1)
		st = -1;
	return st;
}

#endif
