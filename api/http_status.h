/*
 * http_status.h: the bodies of GET /v1/admin/status (JSON, with its
 * alerts) and GET /metrics (Prometheus text) from a struct srv_status
 * (http_status.c). http_routes.c answers them.
 */
#ifndef BOOKD_HTTP_STATUS_H
#define BOOKD_HTTP_STATUS_H

#include "http_json.h"
#include "srv.h"

/* The status object into w. */
void http_status_json(struct jw *w, const struct srv_status *st);
/* The metrics, one family after another, into w (as text). */
void http_metrics_text(struct jw *w, const struct srv_status *st);

#endif
