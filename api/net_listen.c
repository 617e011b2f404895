/*
 * net_listen.c: where connections come from (api/net_int.h).
 *
 * Listening. Before binding host:port the first thread tries a socket
 * without SO_REUSEPORT on it: if anything listens there (another bookd
 * would share the port through SO_REUSEPORT and answer half the clients
 * from another data dir), net_prepare refuses with a clear error. Once
 * every thread listens, the listening sockets on that port are read back
 * from /proc/net/tcp{,6}: one that is not ours (two servers started at the
 * same instant) is refused as well. "unix:PATH" is bound once and dup'ed
 * for each thread.
 *
 * Accept. Each thread keeps a multishot accept on its listeners. A full
 * connection table refuses (closes) the accepted socket. Connections per
 * client address are capped over all threads (conn_per_address_max: a
 * table under addr_lock, touched at accept and release only; an IPv6
 * address counts by its /64, unix sockets not at all): over the cap, the
 * accepted socket is closed at once. The last conn_reserve slots of each
 * thread's table are a reserve: a connection accepted into it is marked
 * (srv_conn_in_reserve) and its protocol serves it only /health and the
 * service key, so that an operator and the health check still get in when
 * the table is full.
 */
#include "net_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- connections per client address ---- */

/* The key an address counts under: IPv4 (also mapped into IPv6) by its
 * address, IPv6 by its /64 (what one client is usually given); 0 for what
 * is not counted (unix sockets). */
uint64_t addr_key_of(const struct sockaddr_storage *ss)
{
	uint8_t b[9];
	uint64_t k;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		b[0] = 4;
		memcpy(b + 1, &a->sin_addr, 4);
		k = auth_limit_key(b, 5);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			b[0] = 4;
			memcpy(b + 1, a->sin6_addr.s6_addr + 12, 4);
			k = auth_limit_key(b, 5);
		} else {
			b[0] = 6;
			memcpy(b + 1, a->sin6_addr.s6_addr, 8);
			k = auth_limit_key(b, 9);
		}
	} else {
		return 0;
	}
	return k ? k : 1;
}

/* One more connection from key: false when it has conn_per_address_max
 * already. The table holds one entry per address with connections, at
 * most the connection slots of all threads: never more than half full. */
bool addr_take(struct srv *s, uint64_t key)
{
	struct addr_slot *a;
	uint32_t i = (uint32_t)key & s->addr_mask, probes = 0;
	bool ok;

	ASSERT(key != 0);
	pthread_mutex_lock(&s->addr_lock);
	while (s->addr_slots[i].key && s->addr_slots[i].key != key) {
		ASSERT(++probes <=
		       s->addr_mask); /* never full: an empty slot */
		i = (i + 1) & s->addr_mask;
	}
	a = &s->addr_slots[i];
	if (!a->key) {
		a->key = key;
		a->count = 0;
	}
	ok = a->count < s->cfg.conn_per_address_max;
	if (ok)
		a->count++;
	pthread_mutex_unlock(&s->addr_lock);
	return ok;
}

void addr_release(struct srv *s, uint64_t key)
{
	struct addr_slot *slots = s->addr_slots;
	uint32_t mask = s->addr_mask, i = (uint32_t)key & mask, j;

	pthread_mutex_lock(&s->addr_lock);
	while (slots[i].key != key) {
		ASSERT(slots[i].key != 0); /* taken before */
		i = (i + 1) & mask;
	}
	ASSERT(slots[i].count > 0);
	if (--slots[i].count == 0) {
		/* Delete by shifting back the entries after it that probed
		 * past i (their home is not in (i, j] cyclically). */
		for (j = (i + 1) & mask; slots[j].key; j = (j + 1) & mask) {
			uint32_t home = (uint32_t)slots[j].key & mask;
			bool stays = i <= j ? (home > i && home <= j)
					    : (home > i || home <= j);
			if (!stays) {
				slots[i] = slots[j];
				i = j;
			}
		}
		slots[i].key = 0;
		slots[i].count = 0;
	}
	pthread_mutex_unlock(&s->addr_lock);
}

void on_accept(struct net_thread *t, struct listener *l, int res,
	       uint32_t flags)
{
	struct srv *s = t->s;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct conn *c;
	uint64_t key;
	uint32_t i;
	int one = 1;

	if (!(flags & IORING_CQE_F_MORE) && !atomic_load(&s->stopping)) {
		/* The multishot accept ended (e.g. ENFILE): re-arm it. */
		struct io_uring_sqe *sqe = get_sqe(t);
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL,
					       SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe,
					ud_make(UD_ACCEPT,
						(uint32_t)(l - t->listeners),
						0));
	}
	if (res < 0)
		return;
	if (t->conn_free == NIL || atomic_load(&s->stopping)) {
		close(res); /* full: refuse rather than starve the others */
		if (t->conn_free == NIL)
			atomic_fetch_add_explicit(&t->refused_full, 1,
						  memory_order_relaxed);
		return;
	}
	if (getpeername(res, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	key = s->cfg.conn_per_address_max ? addr_key_of(&ss) : 0;
	if (key && !addr_take(s, key)) {
		close(res); /* this address has its share of the table */
		atomic_fetch_add_explicit(&t->refused_address, 1,
					  memory_order_relaxed);
		return;
	}
	i = t->conn_free;
	c = conn_at(t, i);
	ASSERT(c->fd < 0 && c->ops == 0 && c->fifo_count == 0); /* released */
	c->state =
		calloc(1, l->proto->conn_state_size ? l->proto->conn_state_size
						    : 1);
	if (!c->state) {
		if (key)
			addr_release(s, key);
		close(res);
		return;
	}
	t->conn_free = c->free_next;
	/* The last conn_reserve slots: /health and the service key only. */
	c->reserve = t->conn_count >= t->conn_count_max - s->cfg.conn_reserve;
	t->conn_count++;
	ASSERT(t->conn_count <= t->conn_count_max);
	atomic_fetch_add_explicit(&t->conn_gauge, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->conn_by_proto[proto_id(l->proto)], 1,
				  memory_order_relaxed);
	c->fd = res;
	c->proto = l->proto;
	c->addr_key = key;
	c->ops = 0;
	c->recv_armed = c->sending = c->closing = c->close_after = false;
	c->dirty_listed = c->in_parse = c->in_blocked = false;
	c->served = false;
	c->fifo_head = c->fifo_tail = NIL;
	c->fifo_count = 0;
	c->out_sent = 0;
	c->read_ns = c->send_ns = mono_ns();
	c->request_ns = c->read_ns; /* the first request's deadline runs */
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->peer[0] = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, c->peer, sizeof(c->peer));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, c->peer, sizeof(c->peer));
	}
	if (!c->peer[0])
		strcpy(c->peer, "unix");
	c->peer_key = auth_limit_key(c->peer, strlen(c->peer));
	arm_recv(c);
}

static int split_addr(const char *addr, char *host, size_t host_size,
		      char *port, size_t port_size)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hn;

	if (!colon)
		return -EINVAL;
	hn = (size_t)(colon - addr);
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn == 0 || hn >= host_size || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= port_size)
		return -EINVAL;
	memcpy(host, h, hn);
	host[hn] = 0;
	strcpy(port, colon + 1);
	return 0;
}

/* "unix:PATH": a unix socket, bound once (the threads share it: dup). A
 * socket file left by an earlier run is replaced, one a live server
 * answers on is not. Removed by net_free. */
static int listen_unix(struct srv *s, int which, const char *addr, char *shown,
		       size_t shown_size, char *err, size_t err_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = addr + 5;
	struct stat st;
	int fd, probe;

	ASSERT(strncmp(addr, "unix:", 5) == 0);
	if (s->unix_fd[which] >= 0) {
		fd = fcntl(s->unix_fd[which], F_DUPFD_CLOEXEC, 0);
		return fd >= 0 ? fd : -errno;
	}
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_size,
			 "bad listen address '%s' (unix:PATH, "
			 "at most %zu bytes)",
			 addr, sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_size,
				 "cannot listen on %s: a file "
				 "that is not a socket is there",
				 addr);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, err_size,
				 "cannot listen on %s: a server "
				 "answers there",
				 addr);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* stale: its server is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, NET_LISTEN_BACKLOG)) {
		int e = errno;
		snprintf(err, err_size, "cannot listen on %s: %s", addr,
			 strerror(e));
		close(fd);
		return -e;
	}
	s->unix_fd[which] = fd;
	snprintf(s->unix_path[which], sizeof(s->unix_path[which]), "%s", path);
	snprintf(shown, shown_size, "%s", addr);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd >= 0 ? fd : -errno;
}

/* 0 when nothing listens on ai's address: a socket without SO_REUSEPORT
 * cannot bind where one listens (SO_REUSEADDR lets it past connections
 * left in TIME_WAIT); else -errno. */
static int probe_unused(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	int rc = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen))
		rc = -errno;
	close(fd);
	return rc;
}

/* Binds addr with SO_REUSEPORT; *port_io: 0 to take the address's port
 * (then set to the real one: the first thread's socket, which first makes
 * sure nothing listens there), else that port. */
static int listen_on(const char *addr, unsigned *port_io, char *shown,
		     size_t shown_size, char *err, size_t err_size)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	int fd, one = 1, rc;

	if (split_addr(addr, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, err_size, "bad listen address '%s' (host:port)",
			 addr);
		return -EINVAL;
	}
	if (*port_io)
		snprintf(port, sizeof(port), "%u", *port_io);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, err_size, "listen address '%s': %s", addr,
			 gai_strerror(rc));
		return -EINVAL;
	}
	if (*port_io == 0 && strcmp(port, "0") != 0) {
		rc = probe_unused(ai);
		if (rc == -EADDRINUSE) {
			snprintf(err, err_size,
				 "cannot listen on %s: the address "
				 "is in use (another bookd, or another server, "
				 "listens there)",
				 addr);
			goto out_free;
		}
		if (rc) {
			snprintf(err, err_size, "cannot listen on %s: %s", addr,
				 strerror(-rc));
			goto out_free;
		}
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) ||
	    listen(fd, NET_LISTEN_BACKLOG)) {
		rc = -errno;
		snprintf(err, err_size, "cannot listen on %s: %s", addr,
			 strerror(errno));
		close(fd);
		goto out_free;
	}
	{
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned p = 0;
		getsockname(fd, (struct sockaddr *)&ss, &len);
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			p = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			p = ntohs(a->sin6_port);
		}
		*port_io = p;
		snprintf(shown, shown_size,
			 ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, p);
	}
	rc = fd;
out_free:
	freeaddrinfo(ai);
	return rc;
}

int listen_addr(struct srv *s, int which, const char *addr, unsigned *port_io,
		char *shown, size_t shown_size, char *err, size_t err_size)
{
	ASSERT(which == 0 || which == 1);
	if (strncmp(addr, "unix:", 5) == 0)
		return listen_unix(s, which, addr, shown, shown_size, err,
				   err_size);
	return listen_on(addr, port_io, shown, shown_size, err, err_size);
}

/* After every thread listens on port (TCP): does a listening socket that
 * is not one of ours (fds) share it, on our address or a wildcard? (Two
 * servers that probed at the same instant.) Read from /proc/net/tcp and
 * tcp6; what cannot be read is not checked (the probe was). */
static bool port_shared(unsigned port, const int *fds, unsigned fd_count)
{
	static const char *const files[] = { "/proc/net/tcp",
					     "/proc/net/tcp6" };
	enum { LINE_COUNT_MAX = 1 << 22 }; /* sockets read at most */
	unsigned long ours[NET_THREAD_COUNT_MAX];
	char addr_ours[2][33] = { "", "" }; /* our address per file */
	bool shared = false;

	ASSERT(fd_count <= NET_THREAD_COUNT_MAX);
	for (unsigned k = 0; k < fd_count; k++) {
		struct stat st;
		ours[k] =
			fstat(fds[k], &st) == 0 ? (unsigned long)st.st_ino : 0;
	}
	/* Two passes: our sockets' addresses, then the others'. */
	for (int pass = 0; pass < 2 && !shared; pass++) {
		for (int f = 0; f < 2 && !shared; f++) {
			FILE *in = fopen(files[f], "re");
			char line[512], addr[33];
			unsigned lport, state;
			unsigned long inode;
			long n = 0;

			if (!in)
				continue;
			while (fgets(line, sizeof(line), in) &&
			       n++ < LINE_COUNT_MAX) {
				bool mine = false, wild = true;
				if (sscanf(line,
					   " %*u: %32[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x "
					   "%x %*x:%*x %*x:%*x %*x %*u %*u %lu",
					   addr, &lport, &state, &inode) != 4 ||
				    state != 0x0A /* LISTEN */ || lport != port)
					continue;
				for (unsigned k = 0; k < fd_count; k++)
					mine |= inode == ours[k];
				for (const char *p = addr; *p; p++)
					wild &= *p == '0';
				if (pass == 0 && mine)
					snprintf(addr_ours[f],
						 sizeof(addr_ours[f]), "%s",
						 addr);
				if (pass == 1 && !mine &&
				    (wild || !strcmp(addr, addr_ours[f]) ||
				     (addr_ours[f][0] &&
				      strspn(addr_ours[f], "0") ==
					      strlen(addr_ours[f]))))
					shared = true;
			}
			fclose(in);
		}
	}
	return shared;
}

void stop_listeners(struct net_thread *t)
{
	for (unsigned k = 0; k < 2; k++) {
		if (t->listeners[k].fd >= 0) {
			shutdown(t->listeners[k].fd, SHUT_RDWR);
			close(t->listeners[k].fd);
			t->listeners[k].fd = -1;
		}
	}
}

int net_check_ports(const struct srv *s, char *err, size_t err_size)
{
	for (int k = 0; k < 2; k++) {
		unsigned p = k ? s->bin_port : s->http_port;
		int fds[NET_THREAD_COUNT_MAX];
		if (!p)
			continue; /* a unix socket: refused when live */
		for (unsigned i = 0; i < s->thread_count; i++)
			fds[i] = s->threads[i].listeners[k].fd;
		if (port_shared(p, fds, s->thread_count)) {
			snprintf(err, err_size,
				 "cannot listen on %s: another "
				 "socket listens on port %u too (another bookd?)",
				 k ? s->bin_addr : s->http_addr, p);
			return -EADDRINUSE;
		}
	}
	return 0;
}

const char *net_http_address(const struct srv *s) { return s->http_addr; }

const char *net_binary_address(const struct srv *s) { return s->bin_addr; }
