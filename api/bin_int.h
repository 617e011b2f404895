/*
 * bin_int.h: the binary protocol's server side, shared by its two files:
 * bin.c reads requests (frames, hello, ops into core requests) and
 * bin_render.c writes answers (frames of msgpack maps, errors, the
 * decided core_resp). What a request's answer needs travels in struct
 * bin_ctx (copied by srv_submit).
 */
#ifndef BOOKD_BIN_INT_H
#define BOOKD_BIN_INT_H

#include "auth.h"
#include "core.h"
#include "proto.h"
#include "srv.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BIN_MESSAGE_SIZE_MAX 160

struct bin_ctx {
	uint64_t id;
	uint8_t op;   /* enum mp_op */
	uint8_t role; /* enum auth_role */
	bool batch;
	uint16_t index, count;
	uint32_t limit;
	struct core_series_spec *series; /* series.create: freed by render */
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
};
_Static_assert(sizeof(struct bin_ctx) <= SRV_CTX_SIZE_MAX, "bin ctx");
/* A refusal found while reading a request. */
struct bin_err {
	const char *code;
	char message[BIN_MESSAGE_SIZE_MAX];
	uint32_t retry_after;
	int status; /* HTTP's for the same refusal (metrics); 0: from code */
};

/* Packs an answer frame through a small buffer into a struct buf: one
 * buf_put per BIN_W_SIZE bytes rather than one per msgpack token. */
#define BIN_W_SIZE 2048

struct bin_w {
	struct buf *b;
	size_t start; /* the frame's header in b */
	size_t n;
	msgpack_packer pk;
	uint8_t buf[BIN_W_SIZE];
};

/* The HTTP status of a refusal's code (for srv_count_response). */
int bin__http_status(const char *code);
/* An answer frame into b: bin__begin, bin__head (id, [index, count],
 * code; more pairs follow), the pairs, bin__end. */
msgpack_packer *bin__begin(struct bin_w *w, struct buf *b);
void bin__end(struct bin_w *w);
void bin__head(msgpack_packer *pk, const struct bin_ctx *x, const char *code,
	       unsigned more);
/* A refusal as an answer frame: into b, or as the connection's next
 * answer; bin__conn_error for a request without context (id only). */
void bin__error_to(struct srv_conn *c, struct buf *b, const struct bin_ctx *x,
		   const struct bin_err *e);
void bin__answer_error(struct srv_conn *c, const struct bin_ctx *x,
		       const struct bin_err *e);
void bin__conn_error(struct srv_conn *c, uint64_t id, const char *code,
		     const char *message);
/* render() of srv_bin_proto. */
void bin_render(struct srv_conn *c, void *state, const void *ctx, int rc,
		const struct core_resp *resp, const struct srv_views *views,
		struct buf *out);

#endif
