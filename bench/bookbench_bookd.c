/*
 * bookbench_bookd.c: a bookd of bookbench's own (--bookd PATH), for compare
 * and the tests. It runs on a fresh temp data dir, HTTP on a free loopback
 * port and the binary protocol on another or on a unix socket in the data
 * dir (--bookd-socket), with a service key of its own unless one was
 * given, its rate limits off unless --bookd-limits (and bookbench says
 * which), and with --bookd-replicate into a fresh database next to
 * DATABASE_URL's. Start-up waits up to 15 s for /health; stop sends SIGTERM,
 * then SIGKILL after 6 s, drops the database and removes the data dir. Its
 * stderr goes to bookd.log in the data dir. One bookd per process (static
 * state).
 */
#include "bookbench_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t bookd_pid;
static char bookd_dir[256];
static char repl_db[64]; /* the fresh database of --bookd-replicate */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		bb_die("socket: %s", strerror(errno));
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bb_die("bind: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

void bb_bookd_stop(const struct bb_opts *o)
{
	if (bookd_pid <= 0)
		return;
	kill(bookd_pid, SIGTERM);
	int status = 0;
	for (int i = 0; i < 300; i++) {
		if (waitpid(bookd_pid, &status, WNOHANG) == bookd_pid) {
			bookd_pid = 0;
			break;
		}
		usleep(20000);
	}
	if (bookd_pid > 0) {
		kill(bookd_pid, SIGKILL);
		waitpid(bookd_pid, &status, 0);
		bookd_pid = 0;
	}
	if (repl_db[0] != 0) {
		if (bb_pg_drop_db(o->cfg.database_url, repl_db) < 0)
			fprintf(stderr,
				"bookbench: could not drop database %s\n",
				repl_db);
		repl_db[0] = 0;
	}
	if (bookd_dir[0] != 0) {
		char cmd[320];
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", bookd_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bookbench: could not remove %s\n",
				bookd_dir);
		bookd_dir[0] = 0;
	}
}

/* `path --version`: "bookd 0.1.0 (Release)". */
static void bookd_info_of(const struct bb_opts *o, const char *path,
			  struct bb_bookd_info *info)
{
	char cmd[600], line[128];
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", path);
	info->started = true;
	info->limits_off = !o->bookd_limits;
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return;
	if (fgets(line, sizeof(line), p) != NULL &&
	    sscanf(line, "bookd %31s (%47[^)])", info->version,
		   info->build_type) == 2)
		snprintf(info->source, sizeof(info->source), "--version");
	else
		info->version[0] = info->build_type[0] = 0;
	pclose(p);
}

void bb_bookd_start(struct bb_opts *o, const char *path,
		    struct bb_bookd_info *info)
{
	static char http_addr[64], bin_addr[sizeof(bookd_dir) + 32], key[64];
	snprintf(bookd_dir, sizeof(bookd_dir), "/tmp/bookbench-bookd.XXXXXX");
	if (mkdtemp(bookd_dir) == NULL)
		bb_die("mkdtemp: %s", strerror(errno));
	int hp = free_port(), bp = free_port();
	while (bp == hp)
		bp = free_port();
	snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%d", hp);
	if (strcmp(o->bookd_socket, "unix") == 0)
		snprintf(bin_addr, sizeof(bin_addr), "unix:%s/binary.sock",
			 bookd_dir);
	else
		snprintf(bin_addr, sizeof(bin_addr), "127.0.0.1:%d", bp);
	snprintf(info->binary_socket, sizeof(info->binary_socket), "%s",
		 o->bookd_socket);
	if (o->cfg.service_key == NULL) {
		snprintf(key, sizeof(key), "bookbench-%08" PRIx64,
			 (uint64_t)bb_now_ns() & 0xffffffff);
		o->cfg.service_key = key;
	}
	o->cfg.http_addr = http_addr;
	o->cfg.binary_addr = bin_addr;
	static char repl_url[1024];
	if (o->bookd_replicate) {
		char err[BB_ERR_SIZE];
		if (o->cfg.database_url == NULL)
			bb_die("--bookd-replicate needs DATABASE_URL");
		snprintf(repl_db, sizeof(repl_db), "bookbench_repl_%d",
			 (int)getpid());
		if (bb_pg_create_db(o->cfg.database_url, repl_db, repl_url,
				    sizeof(repl_url), err, sizeof(err)) < 0)
			bb_die("%s", err);
		o->replica_url = repl_url;
		fprintf(stderr,
			"bookbench: the bookd replicates into a fresh database %s\n",
			repl_db);
	}
	char log_path[300];
	snprintf(log_path, sizeof(log_path), "%s/bookd.log", bookd_dir);
	pid_t pid = fork();
	if (pid < 0)
		bb_die("fork: %s", strerror(errno));
	if (pid == 0) {
		FILE *lf = freopen(log_path, "w", stderr);
		(void)lf;
		setenv("BOOKD_LISTEN", http_addr, 1);
		setenv("BOOKD_BINARY_LISTEN", bin_addr, 1);
		setenv("BOOKD_DATA_DIR", bookd_dir, 1);
		setenv("BOOKD_SERVICE_KEY", o->cfg.service_key, 1);
		if (!o->bookd_limits) {
			setenv("BOOKD_ADDRESS_RATE", "0", 1);
			setenv("BOOKD_CUSTOMER_RATE", "0", 1);
			setenv("BOOKD_ANON_RATE", "0", 1);
			setenv("BOOKD_SERVICE_RATE", "0", 1);
		}
		if (o->bookd_replicate)
			setenv("DATABASE_URL", o->replica_url, 1);
		else
			unsetenv("DATABASE_URL");
		execl(path, path, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	bookd_pid = pid;
	for (int i = 0; i < 300; i++) {
		if (bb_http_health(&o->cfg) == 0) {
			fprintf(stderr,
				"bookbench: started %s (pid %d): HTTP %s, binary %s, data %s\n",
				path, (int)pid, http_addr, bin_addr, bookd_dir);
			fprintf(stderr, "bookbench: %s\n",
				o->bookd_limits
					? "the started bookd keeps its rate limits (--bookd-limits)"
					: "the started bookd runs with its rate limits off "
					  "(BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 "
					  "BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0; "
					  "--bookd-limits keeps them)");
			bookd_info_of(o, path, info);
			return;
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			bookd_pid = 0;
			bb_die("%s exited during start-up (see %s)", path,
			       log_path);
		}
		usleep(50000);
	}
	bb_bookd_stop(o);
	bb_die("%s did not answer /health within 15 s", path);
}
