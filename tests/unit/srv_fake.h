/*
 * srv_fake.h: the fakes of net.c's queries about a connection's server and
 * peer (api/srv.h) that every program testing an adapter without net.c
 * answers alike: one server, g_srv, whose keys, limiter and status the
 * program sets; the peer is 127.0.0.1; no connection is in the reserve;
 * srv_refresh_views answers g_refresh_rc; srv_import has no import
 * thread; and sub_add, what srv_submit
 * does with a request. Included once by each such
 * program: tests/unit/http_test.h (the test_http_*.c programs),
 * tests/fuzz/fuzz_http.c and tests/fuzz/fuzz_bin.c. Each defines the rest
 * of srv.h (answers, srv_submit around sub_add, srv_count_response,
 * srv_conn_writable, srv_now) its own way.
 */
#ifndef BOOKD_TEST_SRV_FAKE_H
#define BOOKD_TEST_SRV_FAKE_H

#include "srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct srv {
	struct auth_config auth;
	struct auth_limiter *limiter;
	struct srv_status status;
};

/* A request srv_submit took: kept for the program to render an answer. */
#define SUB_MAX 64

struct sub {
	struct core_req req;
	size_t ctx_size;
	_Alignas(16) uint8_t ctx[SRV_CTX_SIZE_MAX];
};

/* What srv_submit does with a request: appended to subs[*count], or -EAGAIN
 * once *count reaches room (or SUB_MAX). */
static inline int sub_add(struct sub *subs, unsigned *count, unsigned room,
			  const struct core_req *req, const void *ctx,
			  size_t ctx_size)
{
	if (ctx_size > SRV_CTX_SIZE_MAX)
		abort();
	if (*count == SUB_MAX || *count >= room)
		return -EAGAIN;
	subs[*count].req = *req;
	subs[*count].ctx_size = ctx_size;
	memcpy(subs[*count].ctx, ctx, ctx_size);
	(*count)++;
	return 0;
}

static struct srv g_srv;
static int g_refresh_rc = -ENOTSUP; /* what srv_refresh_views answers */

struct srv *srv_conn_srv(struct srv_conn *c)
{
	(void)c;
	return &g_srv;
}
const char *srv_conn_peer(const struct srv_conn *c)
{
	(void)c;
	return "127.0.0.1";
}
uint64_t srv_conn_peer_key(const struct srv_conn *c)
{
	(void)c;
	return 0x7f000001;
}
bool srv_conn_in_reserve(const struct srv_conn *c)
{
	(void)c;
	return false;
}
const struct auth_config *srv_auth(const struct srv *s) { return &s->auth; }
struct auth_limiter *srv_limiter(struct srv *s) { return s->limiter; }
void srv_status_get(struct srv *s, struct srv_status *out) { *out = s->status; }
int srv_refresh_views(struct srv *s)
{
	(void)s;
	return g_refresh_rc;
}
/* No import thread: the import routes answer 503. */
struct import_server *srv_import(struct srv *s)
{
	(void)s;
	return NULL;
}

#endif
