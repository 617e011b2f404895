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
 *  - Rate limits: token buckets by key, by customer and by client address
 *    (X-Forwarded-For believed from trusted proxies only), shared by all
 *    network threads.
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
#define AUTH_PROXY_COUNT_MAX 32
#define AUTH_ADDRESS_SIZE 46 /* INET6_ADDRSTRLEN: an address as text */

/* A trusted proxy: an address or a CIDR block, or "unix" (peers on a unix
 * socket). */
struct auth_proxy {
	uint8_t family;	     /* AF_INET, AF_INET6, or AF_UNIX */
	uint8_t prefix_bits; /* 32 or 128 for one address */
	uint8_t addr[16];
};

struct auth_config {
	char service_key[AUTH_KEY_SIZE_MAX]; /* "": no service key accepted */
	char anon_key[AUTH_KEY_SIZE_MAX];    /* "": no anon key accepted */
	char jwt_secret[AUTH_KEY_SIZE_MAX];  /* "": JWTs refused */
	char stripe_secret[AUTH_KEY_SIZE_MAX];
	/* ALLOWED_ORIGINS, comma separated; "*" allows any. */
	char allowed_origins[AUTH_ORIGIN_COUNT_MAX][AUTH_KEY_SIZE_MAX];
	unsigned origin_count;
	/* BOOKD_TRUSTED_PROXIES: peers whose X-Forwarded-For is believed. */
	struct auth_proxy proxies[AUTH_PROXY_COUNT_MAX];
	unsigned proxy_count;
};

/* Fills cfg from the comma-separated ALLOWED_ORIGINS string; -EINVAL if
 * one is too long or there are too many. */
int auth_config_set_origins(struct auth_config *cfg, const char *list);
/* Fills cfg's trusted proxies from a comma-separated list of addresses,
 * CIDR blocks and "unix" ("10.0.0.5, 10.1.0.0/16, ::1, unix"); "" none.
 * -EINVAL (and none set) for a malformed entry or too many. */
int auth_config_set_proxies(struct auth_config *cfg, const char *list);
/* The client's address for the address rate limit, into out: the peer
 * (as srv_conn_peer gives it: "127.0.0.1", "::1", "unix"); when the peer
 * is a trusted proxy and the request has X-Forwarded-For (xff, NULL or not
 * NUL-terminated), the right-most address there that is not itself a
 * trusted proxy (walking right to left through trusted ones; a malformed
 * entry stops the walk at the last good hop). Returns the length. */
size_t auth_client_address(const struct auth_config *cfg, const char *peer,
			   const char *xff, size_t xff_size,
			   char out[AUTH_ADDRESS_SIZE]);

enum auth_role {
	AUTH_NONE = 0, /* no or unknown credentials */
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
	AUTH_MISSING,	/* no token */
	AUTH_BAD_TOKEN, /* unknown key, malformed JWT, bad signature,
			 * exp missing, exp/nbf/iat not integer seconds */
	AUTH_EXPIRED,	/* JWT exp passed */
};

/* token is what follows "Bearer " (not NUL-terminated). */
enum auth_result auth_bearer(const struct auth_config *cfg, const char *token,
			     size_t token_size, core_time now,
			     struct auth_principal *out);

/* A customer JWT (HS256, {"sub":sub,"exp":exp_s,"iat":now_s}) signed with
 * secret into out (NUL-ended): its length, or -EINVAL (no secret, or a sub
 * auth_bearer would refuse: empty, too long, not a printable customer id)
 * or -ENOSPC (out too small), -ENOMEM. For bookd --demo's sign-in link;
 * a deployment's own backend mints its customers' tokens. */
int auth_jwt_make(const char *secret, const char *sub, int64_t exp_s,
		  int64_t now_s, char *out, size_t out_size);

/* token is the service key (constant time, as auth_bearer compares it):
 * a cheap first look, so that everyone else can be held to an address's
 * limit before a JWT's signature is computed. */
bool auth_is_service_key(const struct auth_config *cfg, const char *token,
			 size_t token_size);

/* Checks the Stripe-Signature header value against body. 0 when valid;
 * -EINVAL malformed or wrong signature, -ETIME outside the tolerance. */
int auth_stripe_verify(const struct auth_config *cfg, const char *header,
		       size_t header_size, const void *body, size_t body_size,
		       core_time now);

bool auth_origin_allowed(const struct auth_config *cfg, const char *origin,
			 size_t origin_size);

/* Whom a request acts for (book, customer.bookings: both protocols): the
 * customer id given (s[0..n); n 0: none) against the principal. A
 * customer acts only for itself (its sub when none is given), anyone else
 * for the id it names. 0 and out set (s may be out); -ENOENT: none given
 * and none implied; -EPERM: a customer naming another. The id's syntax is
 * the caller's (fld_customer_id_valid). */
int auth_acts_for(const struct auth_principal *who, const char *s, size_t n,
		  char out[CORE_CUSTOMER_ID_SIZE_MAX + 1]);
/* The payment a principal gets for the one it asked (both protocols): a
 * customer's CORE_PAY_NONE is CORE_PAY_AUTO (a free event confirms, a
 * priced one holds); only the service key confirms without payment. */
enum core_payment auth_payment_for(const struct auth_principal *who,
				   enum core_payment asked);

/* The idempotency key as the core sees it: (scope, key) hashed, so that
 * the same key from two callers is two keys. auth_fingerprint() hashes up
 * to three byte strings (their sizes first) into a request's fingerprint:
 * an operation's name and canonical fields (ops.c's ops_fingerprint, both
 * protocols), or a Stripe webhook's method, path and body. */
void auth_idem_key(const struct auth_principal *who, const char *key,
		   size_t key_size, struct core_idem *out);
uint64_t auth_fingerprint(const void *a, size_t a_size, const void *b,
			  size_t b_size, const void *c, size_t c_size);

/* ---- rate limits ---- */

/* Who is held to which (http_routes.c, bin.c): the service key only to
 * AUTH_LIMIT_SERVICE (authenticated first, never to an address's limit);
 * the anon key to its address's and AUTH_LIMIT_KEY; a customer JWT to its
 * address's and its sub's; a request with no or a bad token to its
 * address's. */
enum auth_limit_kind {
	AUTH_LIMIT_ADDRESS = 0, /* per client address (auth_client_address) */
	AUTH_LIMIT_KEY,		/* per anon key */
	AUTH_LIMIT_CUSTOMER,	/* per customer (JWT sub) */
	AUTH_LIMIT_SERVICE,	/* the service key */
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
/* Requests refused so far, by the limit that refused them. */
void auth_limit_refusals(const struct auth_limiter *l,
			 uint64_t out[AUTH_LIMIT_KIND_COUNT]);
/* The limit's name in /metrics ("address", "key", "customer",
 * "service"). */
const char *auth_limit_kind_name(enum auth_limit_kind kind);
/* A string key (bearer token, customer id) as a limiter key. */
uint64_t auth_limit_key(const void *p, size_t n);

#endif
