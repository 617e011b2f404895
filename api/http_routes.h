/*
 * http_routes.h: from one parsed request to its core request or answer
 * (http_routes.c): http_route(), which http.c calls with what it parsed
 * (http_req.h). The answer is rendered by http_render() (http_render.h).
 */
#ifndef BOOKD_HTTP_ROUTES_H
#define BOOKD_HTTP_ROUTES_H

#include "http_req.h"
#include "srv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Handles one complete request: queues its answer or submits it.
 * 0: handled (keep going if keep_alive), -EAGAIN: srv_submit is full (the
 * request stays unparsed: the caller returns the bytes used before it;
 * net.c parses again once answers went out), -EPIPE: handled, close the
 * connection after its answer. */
int http_route(struct srv_conn *c, struct http_cat_slot *slot,
	       const struct http_request *rq);

#endif
