/*
 * auth.h: who is asking, and how often (internal to api/).
 *
 *  - Bearer tokens: the service key (anything), the anon key (public
 *    listings), or an HS256 JWT signed with BOOKD_JWT_SECRET whose sub is a
 *    customer id (that customer's own bookings). Keys are compared in
 *    constant time; a JWT's signature is checked before its claims are
 *    trusted; exp is required (without it the token is refused as
 *    invalid), and exp, nbf, iat must be integer seconds in range.
 *  - Stripe webhooks: the Stripe-Signature header (t=..., v1=...) is an
 *    HMAC-SHA256 of "t.body" with STRIPE_WEBHOOK_SECRET, within a timestamp
 *    tolerance.
 *  - CORS: the Origin header against ALLOWED_ORIGINS.
 *  - Rate limits: token buckets by key, by customer and by address,
 *    shared by all network threads.
 * Uses OpenSSL's libcrypto for HMAC-SHA256.
 */
#ifndef BOOKD_AUTH_H
#define BOOKD_AUTH_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_SIZE_MAX 256
#define AUTH_ORIGIN_COUNT_MAX 32
#define AUTH_TOKEN_SIZE_MAX 4096
#define AUTH_STRIPE_TOLERANCE_MS (5 * 60 * 1000)

struct auth_config {
	char service_key[AUTH_KEY_SIZE_MAX]; /* "": no service key accepted */
	char anon_key[AUTH_KEY_SIZE_MAX];    /* "": no anon key accepted */
	char jwt_secret[AUTH_KEY_SIZE_MAX];  /* "": JWTs refused */
	char stripe_secret[AUTH_KEY_SIZE_MAX];
	/* ALLOWED_ORIGINS, comma separated; "*" allows any. */
	char allowed_origins[AUTH_ORIGIN_COUNT_MAX][AUTH_KEY_SIZE_MAX];
	unsigned origin_count;
};

/* Fills cfg from the comma-separated ALLOWED_ORIGINS string; -EINVAL if
 * one is too long or there are too many. */
int auth_config_set_origins(struct auth_config *cfg, const char *list);

enum auth_role {
	AUTH_NONE = 0,  /* no or unknown credentials */
	AUTH_ANON,
	AUTH_CUSTOMER,
	AUTH_SERVICE,
};

struct auth_principal {
	enum auth_role role;
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX + 1]; /* AUTH_CUSTOMER */
	core_time expires_at; /* AUTH_CUSTOMER: the JWT's exp; 0 never */
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_MISSING,     /* no token */
	AUTH_BAD_TOKEN,   /* unknown key, malformed JWT, bad signature,
			 * exp missing, exp/nbf/iat not integer seconds */
	AUTH_EXPIRED,     /* JWT exp passed */
};

/* token is what follows "Bearer " (not NUL-terminated). */
enum auth_result auth_bearer(const struct auth_config *cfg, const char *token,
			     size_t token_size, core_time now,
			     struct auth_principal *out);

/* Checks the Stripe-Signature header value against body. 0 when valid;
 * -EINVAL malformed or wrong signature, -ETIME outside the tolerance. */
int auth_stripe_verify(const struct auth_config *cfg, const char *header,
		       size_t header_size, const void *body, size_t body_size,
		       core_time now);

bool auth_origin_allowed(const struct auth_config *cfg, const char *origin,
			 size_t origin_size);

/* The idempotency key as the core sees it: (scope, key) hashed, so that
 * the same key from two callers is two keys. The fingerprint of the
 * request (method, path, body) is the protocol's: auth_fingerprint(). */
void auth_idem_key(const struct auth_principal *who, const char *key,
		   size_t key_size, struct core_idem *out);
uint64_t auth_fingerprint(const void *a, size_t a_size, const void *b,
			  size_t b_size, const void *c, size_t c_size);

/* ---- rate limits ---- */

enum auth_limit_kind {
	AUTH_LIMIT_ADDRESS = 0, /* per peer address */
	AUTH_LIMIT_KEY,         /* per bearer key (service, anon) */
	AUTH_LIMIT_CUSTOMER,    /* per customer (JWT sub, or booked for) */
	AUTH_LIMIT_KIND_COUNT
};

struct auth_limit_config {
	/* Tokens per second and bucket size, per kind; rate 0: no limit. */
	double rate[AUTH_LIMIT_KIND_COUNT];
	double burst[AUTH_LIMIT_KIND_COUNT];
	uint32_t bucket_count; /* buckets per kind (hashed keys) */
};

void auth_limit_config_default(struct auth_limit_config *cfg);

struct auth_limiter;
struct auth_limiter *auth_limiter_new(const struct auth_limit_config *cfg);
void auth_limiter_free(struct auth_limiter *l);
/* Takes one token for key; any thread. true: allowed. false: refused, and
 * *retry_after_s says when to come back (>= 1). */
bool auth_limit_take(struct auth_limiter *l, enum auth_limit_kind kind,
		     uint64_t key, core_time now, uint32_t *retry_after_s);
/* A string key (bearer token, customer id) as a limiter key. */
uint64_t auth_limit_key(const void *p, size_t n);

#endif
