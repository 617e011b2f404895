/*
 * auth.c: who is asking, and how often (auth.h).
 *
 * Bearer tokens. The token is compared with the service key and with the
 * anon key, both always, in constant time for equal lengths (CRYPTO_memcmp;
 * only the length may leak, never how many leading bytes matched). Anything
 * else with exactly two dots is an HS256 JWT:
 *   1. header.payload.signature, each non-empty base64url without padding,
 *      canonical (unused trailing bits zero);
 *   2. the signature (32 bytes) is compared in constant time with
 *      HMAC-SHA256(jwt_secret, "header.payload") BEFORE any JSON is parsed:
 *      jansson never sees bytes that are not ours;
 *   3. the header must say "alg":"HS256" ("none", "HS512", anything else is
 *      refused even with a matching signature) and carry no "crit";
 *   4. the claims: "sub" a customer id (fields.h); "exp" required (a token
 *      without one is AUTH_BAD_TOKEN: a customer token never lives
 *      forever), expired when now >= exp; "nbf", when present, refuses
 *      the token before it (with AUTH_JWT_NBF_LEEWAY_S of clock skew);
 *      "iat" is not used but, like exp and nbf, must be a JSON integer
 *      0..AUTH_JWT_TIME_S_MAX seconds (a fraction, an exponent such as
 *      1e300, a string or anything out of range is AUTH_BAD_TOKEN), so
 *      converting to milliseconds never overflows.
 * Tokens are at most AUTH_TOKEN_SIZE_MAX bytes, so every buffer is on the
 * stack. jansson allocates while it parses (malloc): at most a few
 * kilobytes per request, freed before returning.
 *
 * Stripe-Signature: "t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]", in
 * any order; unknown schemes are ignored; t exactly once, at least one v1.
 * Valid when any v1 is HMAC-SHA256(stripe_secret, "<t>.<body>") (t as
 * written in the header); the timestamp is checked after the signature, so
 * -ETIME is only said about a signed timestamp: |now - t| must be within
 * AUTH_STRIPE_TOLERANCE_MS, both directions.
 *
 * Idempotency keys: XXH3-128 over a fixed header (a tag, the role, the
 * customer id's length, the key's length) followed by the customer id and
 * the key, so that no two (role, customer, key) triples encode to the same
 * bytes; a present key never hashes to hi = lo = 0 ("no key").
 *
 * Rate limits: one fixed table of token buckets per kind, allocated by
 * auth_limiter_new (none for a kind with rate 0), bucket_count each. A
 * limiter key (uint64) is mixed and mapped to a bucket; the bucket stores its
 * key, and a different key arriving there takes the bucket over with a full
 * burst (a collision forgets a stranger's debt rather than sharing it; the
 * cost is that two colliding heavy users can escape the limit, which is
 * bounded by bucket_count). Buckets refill by elapsed time (rate per second,
 * up to burst); time never runs backwards inside a bucket. Threads: any
 * number; a bucket is guarded by one of AUTH__STRIPE_COUNT mutexes per kind
 * (critical sections are a few instructions).
 *
 * Client addresses (auth_client_address): the peer, unless it is one of
 * BOOKD_TRUSTED_PROXIES (addresses, CIDR blocks, "unix"); then
 * X-Forwarded-For is read right to left, each hop believed only while the
 * one after it (to its right, or the peer) is trusted, so a client cannot
 * choose its own address by writing the header: what it wrote sits left of
 * what its proxy appended. Addresses are normalised (inet_ntop) so that one
 * client is one key however a proxy spells it.
 *
 * HMAC-SHA256 comes from OpenSSL's libcrypto (EVP_MAC "HMAC", fetched once).
 */
#include "auth.h"
#include "bookd_assert.h"

#include "fields.h"
#include "hex.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <errno.h>
#include <jansson.h>
#include <math.h> /* isfinite: a macro, no libm */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#define AUTH__SHA256_SIZE 32
#define AUTH__JWT_PART_SIZE_MAX ((AUTH_TOKEN_SIZE_MAX / 4 + 1) * 3)
#define AUTH_JWT_NBF_LEEWAY_S 30
#define AUTH_JWT_TIME_S_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define AUTH__STRIPE_HEADER_SIZE_MAX 8192
#define AUTH__STRIPE_V1_COUNT_MAX 8
#define AUTH__STRIPE_T_DIGITS_MAX 15 /* seconds; year 33658 */
#define AUTH__STRIPE_COUNT 256	     /* mutexes per limiter kind */
#define AUTH__BUCKET_COUNT_MAX (1u << 24)
#define AUTH__RETRY_AFTER_S_MAX 86400
#define AUTH__IDEM_TAG UINT64_C(0x626f6f6b642d6964) /* "bookd-id" */

/* ---- HMAC-SHA256 ---- */

static EVP_MAC *auth__hmac;
static pthread_once_t auth__hmac_once = PTHREAD_ONCE_INIT;

static void auth__hmac_fetch(void)
{
	auth__hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

struct auth__part {
	const void *p;
	size_t n;
};

/* HMAC-SHA256(key, parts[0] || parts[1] || ...) into out. 0 or -ENOMEM. */
static int auth__hmac_sha256(const void *key, size_t key_size,
			     const struct auth__part *parts,
			     unsigned part_count,
			     uint8_t out[AUTH__SHA256_SIZE])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t out_size = 0;
	int rc = -ENOMEM;

	ASSERT(key_size > 0);
	pthread_once(&auth__hmac_once, auth__hmac_fetch);
	if (!auth__hmac)
		return -ENOMEM;
	ctx = EVP_MAC_CTX_new(auth__hmac);
	if (!ctx)
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, key_size, params))
		goto out_free_ctx;
	for (unsigned i = 0; i < part_count; i++)
		if (parts[i].n && !EVP_MAC_update(ctx, parts[i].p, parts[i].n))
			goto out_free_ctx;
	if (!EVP_MAC_final(ctx, out, &out_size, AUTH__SHA256_SIZE))
		goto out_free_ctx;
	ASSERT(out_size == AUTH__SHA256_SIZE);
	rc = 0;
out_free_ctx:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* Equal contents and lengths; the time taken depends on the lengths only. */
static bool auth__equal(const void *a, size_t a_size, const void *b,
			size_t b_size)
{
	size_t n = a_size < b_size ? a_size : b_size;
	bool same = CRYPTO_memcmp(a, b, n) == 0;

	return same & (a_size == b_size);
}

static bool auth__key_matches(const char *key, const char *token,
			      size_t token_size)
{
	size_t key_size = strnlen(key, AUTH_KEY_SIZE_MAX);

	if (key_size == 0) /* not configured: nothing matches */
		return false;
	return auth__equal(key, key_size, token, token_size);
}

/* ---- configuration ---- */

static size_t auth__trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		n--;
	}
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/* The next item of the comma-separated list at *s (NULL once the last
 * is taken), blanks trimmed: *item and its size *n (0: an empty item);
 * false when there is none left. */
static bool auth__list_next(const char **s, const char **item, size_t *n)
{
	const char *comma;

	if (!*s)
		return false;
	comma = strchr(*s, ',');
	*item = *s;
	*n = auth__trim(item, comma ? (size_t)(comma - *s) : strlen(*s));
	*s = comma ? comma + 1 : NULL;
	return true;
}

int auth_config_set_origins(struct auth_config *cfg, const char *list)
{
	unsigned count = 0;

	/* First check everything, then fill: cfg is unchanged on -EINVAL. */
	for (int pass = 0; pass < 2; pass++) {
		const char *s = list ? list : "", *item;
		size_t n;

		count = 0;
		while (auth__list_next(&s, &item, &n)) {
			if (!n)
				continue;
			if (n >= AUTH_KEY_SIZE_MAX ||
			    count == AUTH_ORIGIN_COUNT_MAX)
				return -EINVAL;
			if (pass == 1) {
				memcpy(cfg->allowed_origins[count], item, n);
				cfg->allowed_origins[count][n] = '\0';
			}
			count++;
		}
	}
	cfg->origin_count = count;
	ASSERT(cfg->origin_count <= AUTH_ORIGIN_COUNT_MAX);
	return 0;
}

/* ---- trusted proxies and the client's address ---- */

/* An address as text (n bytes, not NUL-terminated) into family and 16
 * bytes; "[v6]" and a ":port" after an IPv4 address or "[v6]" are
 * accepted (some proxies write them). 0 or -EINVAL. */
static int auth__addr_parse(const char *s, size_t n, uint8_t *family,
			    uint8_t addr[16])
{
	char buf[AUTH_ADDRESS_SIZE];
	const char *colon;

	if (n >= 2 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || (close + 1 != s + n && close[1] != ':'))
			return -EINVAL;
		n = (size_t)(close - s - 1);
		s++;
		if (n == 0 || n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, n);
		buf[n] = '\0';
		*family = AF_INET6;
		return inet_pton(AF_INET6, buf, addr) == 1 ? 0 : -EINVAL;
	}
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	colon = memchr(buf, ':', n);
	if (colon)
		buf[colon - buf] = '\0'; /* "1.2.3.4:5678" */
	*family = AF_INET;
	return inet_pton(AF_INET, buf, addr) == 1 ? 0 : -EINVAL;
}

static bool auth__proxy_match(const struct auth_proxy *p, uint8_t family,
			      const uint8_t addr[16])
{
	unsigned bits = p->prefix_bits, whole = bits / 8;

	if (p->family != family)
		return false;
	if (family == AF_UNIX)
		return true;
	if (memcmp(p->addr, addr, whole) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	return ((p->addr[whole] ^ addr[whole]) &
		(uint8_t)(0xff << (8 - bits % 8))) == 0;
}

static bool auth__trusted(const struct auth_config *cfg, uint8_t family,
			  const uint8_t addr[16])
{
	ASSERT(cfg->proxy_count <= AUTH_PROXY_COUNT_MAX);
	for (unsigned i = 0; i < cfg->proxy_count; i++)
		if (auth__proxy_match(&cfg->proxies[i], family, addr))
			return true;
	return false;
}

/* One entry of BOOKD_TRUSTED_PROXIES: "unix", an address, or addr/bits. */
static int auth__proxy_parse(const char *s, size_t n, struct auth_proxy *p)
{
	const char *slash = memchr(s, '/', n);
	size_t addr_n = slash ? (size_t)(slash - s) : n;
	unsigned bits = 0, max;

	memset(p, 0, sizeof(*p));
	if (n == 4 && memcmp(s, "unix", 4) == 0) {
		p->family = AF_UNIX;
		return 0;
	}
	if (addr_n == 0 || s[0] == '[' ||
	    auth__addr_parse(s, addr_n, &p->family, p->addr) != 0 ||
	    (p->family == AF_INET && memchr(s, ':', addr_n)))
		return -EINVAL; /* no brackets or ports in the list */
	max = p->family == AF_INET ? 32 : 128;
	if (!slash) {
		p->prefix_bits = (uint8_t)max;
		return 0;
	}
	if (slash + 1 == s + n || slash + 4 < s + n)
		return -EINVAL; /* 1-3 digits */
	for (const char *d = slash + 1; d < s + n; d++) {
		if (*d < '0' || *d > '9')
			return -EINVAL;
		bits = bits * 10 + (unsigned)(*d - '0');
	}
	if (bits > max)
		return -EINVAL;
	p->prefix_bits = (uint8_t)bits;
	return 0;
}

int auth_config_set_proxies(struct auth_config *cfg, const char *list)
{
	struct auth_proxy tmp[AUTH_PROXY_COUNT_MAX];
	const char *s = list ? list : "", *item;
	unsigned count = 0;
	size_t n;

	while (auth__list_next(&s, &item, &n)) {
		if (!n)
			continue;
		if (count == AUTH_PROXY_COUNT_MAX ||
		    auth__proxy_parse(item, n, &tmp[count]) != 0)
			return -EINVAL;
		count++;
	}
	ASSERT(count <= AUTH_PROXY_COUNT_MAX);
	memcpy(cfg->proxies, tmp, count * sizeof(tmp[0]));
	cfg->proxy_count = count;
	return 0;
}

static size_t auth__addr_text(uint8_t family, const uint8_t addr[16],
			      char out[AUTH_ADDRESS_SIZE])
{
	if (!inet_ntop(family, addr, out, AUTH_ADDRESS_SIZE))
		out[0] = '\0';
	return strlen(out);
}

size_t auth_client_address(const struct auth_config *cfg, const char *peer,
			   const char *xff, size_t xff_size,
			   char out[AUTH_ADDRESS_SIZE])
{
	uint8_t family = AF_UNIX, addr[16] = { 0 };
	size_t end = xff_size;
	size_t n = strnlen(peer, AUTH_ADDRESS_SIZE - 1);

	memcpy(out, peer, n);
	out[n] = '\0';
	if (!xff || cfg->proxy_count == 0)
		return n;
	if (strcmp(peer, "unix") != 0 &&
	    auth__addr_parse(peer, n, &family, addr) != 0)
		return n;
	/* Right to left while the hop we came from is trusted. */
	while (auth__trusted(cfg, family, addr)) {
		size_t start = end, len;
		const char *item;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		item = xff + start;
		len = auth__trim(&item, end - start);
		if (len == 0 && start == 0 && end == xff_size)
			break; /* an empty header */
		if (auth__addr_parse(item, len, &family, addr) != 0)
			break; /* the last good hop is the client */
		n = auth__addr_text(family, addr, out);
		if (start == 0)
			break; /* the left-most: the client as far as known */
		end = start - 1;
	}
	ASSERT(n < AUTH_ADDRESS_SIZE);
	return n;
}

bool auth_origin_allowed(const struct auth_config *cfg, const char *origin,
			 size_t origin_size)
{
	ASSERT(cfg->origin_count <= AUTH_ORIGIN_COUNT_MAX);
	if (!origin || origin_size == 0)
		return false;
	for (unsigned i = 0; i < cfg->origin_count; i++) {
		const char *o = cfg->allowed_origins[i];
		size_t n = strnlen(o, AUTH_KEY_SIZE_MAX);

		if (n == 1 && o[0] == '*')
			return true;
		if (n == origin_size && memcmp(o, origin, n) == 0)
			return true;
	}
	return false;
}

/* ---- base64url and hex ---- */

/* A base64url digit's value (its place in the alphabet), or -1. */
static int auth__b64url_value(char c)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *at = c ? strchr(digits, c) : NULL;

	return at ? (int)(at - digits) : -1;
}

/* Unpadded, canonical base64url; returns the decoded size or -EINVAL
 * (also when it would not fit in out_cap). */
static long auth__b64url_decode(const char *s, size_t n, uint8_t *out,
				size_t out_cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t size = 0;

	if (n % 4 == 1) /* 6 bits cannot end a byte */
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int v = auth__b64url_value(s[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (size == out_cap)
				return -EINVAL;
			out[size++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* leftover bits must be zero: one encoding per value */
		return -EINVAL;
	ASSERT(bits < 6);
	return (long)size;
}

/* Unpadded base64url of p[0..n) into out (room for 4 * n / 3 + 4 bytes);
 * its length. */
static size_t auth__b64url_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t size = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[size++] = digits[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits)
		out[size++] = digits[(acc << (6 - bits)) & 63];
	ASSERT(size <= 4 * n / 3 + 4);
	return size;
}

static bool auth__hex_decode(const char *s, size_t n, uint8_t *out,
			     size_t out_size)
{
	if (n != 2 * out_size)
		return false;
	for (size_t i = 0; i < out_size; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* ---- JWT ---- */

int auth_jwt_make(const char *secret, const char *sub, int64_t exp_s,
		  int64_t now_s, char *out, size_t out_size)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char claims[CORE_CUSTOMER_ID_SIZE_MAX + 96];
	uint8_t sig[AUTH__SHA256_SIZE];
	struct auth__part part;
	size_t need, size = 0;
	int len, rc;

	if (!secret || !secret[0] || !sub ||
	    !fld_customer_id_valid(sub, strlen(sub)))
		return -EINVAL;
	/* a valid customer id needs no JSON escape */
	len = snprintf(claims, sizeof(claims),
		       "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld}", sub,
		       (long long)now_s, (long long)exp_s);
	ASSERT(len > 0 && (size_t)len < sizeof(claims));
	need = (4 * (sizeof(header) - 1) / 3 + 4) + 1 +
	       (4 * (size_t)len / 3 + 4) + 1 + (4 * sizeof(sig) / 3 + 4) + 1;
	if (out_size < need)
		return -ENOSPC;
	size += auth__b64url_encode((const uint8_t *)header, sizeof(header) - 1,
				    out + size);
	out[size++] = '.';
	size += auth__b64url_encode((const uint8_t *)claims, (size_t)len,
				    out + size);
	part = (struct auth__part){ out, size };
	rc = auth__hmac_sha256(secret, strlen(secret), &part, 1, sig);
	if (rc)
		return rc;
	out[size++] = '.';
	size += auth__b64url_encode(sig, sizeof(sig), out + size);
	ASSERT(size < out_size);
	out[size] = 0;
	return (int)size;
}

static json_t *auth__json(const uint8_t *p, size_t n)
{
	json_error_t err;
	json_t *j =
		json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err);

	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A NumericDate claim: a JSON integer 0..AUTH_JWT_TIME_S_MAX (seconds),
 * so that it converts to milliseconds without overflow. 0 with *out set,
 * or absent and not required (*out unchanged); -EINVAL otherwise (a
 * fraction, an exponent, a string, out of range, or required and absent). */
static int auth__jwt_time(json_t *claims, const char *name, bool required,
			  int64_t *out)
{
	json_t *v = json_object_get(claims, name);
	json_int_t s;

	if (!v)
		return required ? -EINVAL : 0;
	if (!json_is_integer(v))
		return -EINVAL;
	s = json_integer_value(v);
	if (s < 0 || s > AUTH_JWT_TIME_S_MAX)
		return -EINVAL;
	*out = (int64_t)s;
	return 0;
}

static enum auth_result auth__jwt(const struct auth_config *cfg,
				  const char *token, size_t token_size,
				  core_time now, struct auth_principal *out)
{
	uint8_t header[AUTH__JWT_PART_SIZE_MAX];
	uint8_t payload[AUTH__JWT_PART_SIZE_MAX];
	uint8_t sig[AUTH__SHA256_SIZE + 3], mac[AUTH__SHA256_SIZE];
	size_t secret_size = strnlen(cfg->jwt_secret, AUTH_KEY_SIZE_MAX);
	const char *dot1, *dot2, *alg;
	long header_size, payload_size, sig_size;
	enum auth_result r = AUTH_BAD_TOKEN;
	json_t *h = NULL, *c = NULL, *sub;
	int64_t exp_s = -1, nbf_s = -1, iat_s = -1;
	size_t sub_size;

	if (secret_size == 0)
		return AUTH_BAD_TOKEN;
	dot1 = memchr(token, '.', token_size);
	if (!dot1)
		return AUTH_BAD_TOKEN;
	dot2 = memchr(dot1 + 1, '.', token_size - (size_t)(dot1 + 1 - token));
	if (!dot2 ||
	    memchr(dot2 + 1, '.', token_size - (size_t)(dot2 + 1 - token)))
		return AUTH_BAD_TOKEN;
	if (dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + token_size)
		return AUTH_BAD_TOKEN; /* an empty part ("alg none" has one) */

	/* The signature first: nothing is parsed before it is checked. */
	sig_size = auth__b64url_decode(dot2 + 1,
				       token_size - (size_t)(dot2 + 1 - token),
				       sig, sizeof(sig));
	if (sig_size != AUTH__SHA256_SIZE)
		return AUTH_BAD_TOKEN;
	if (auth__hmac_sha256(cfg->jwt_secret, secret_size,
			      &(struct auth__part){ token,
						    (size_t)(dot2 - token) },
			      1, mac) < 0)
		return AUTH_BAD_TOKEN;
	if (CRYPTO_memcmp(sig, mac, AUTH__SHA256_SIZE) != 0)
		return AUTH_BAD_TOKEN;

	header_size = auth__b64url_decode(token, (size_t)(dot1 - token), header,
					  sizeof(header));
	payload_size = auth__b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1),
					   payload, sizeof(payload));
	if (header_size <= 0 || payload_size <= 0)
		return AUTH_BAD_TOKEN;
	h = auth__json(header, (size_t)header_size);
	if (!h)
		goto out;
	alg = json_string_value(json_object_get(h, "alg"));
	if (!alg || strcmp(alg, "HS256") != 0 ||
	    json_string_length(json_object_get(h, "alg")) != 5)
		goto out;
	if (json_object_get(h, "crit"))
		goto out; /* extensions we do not understand */

	c = auth__json(payload, (size_t)payload_size);
	if (!c)
		goto out;
	sub = json_object_get(c, "sub");
	if (!json_is_string(sub))
		goto out;
	sub_size = json_string_length(sub);
	if (!fld_customer_id_valid(json_string_value(sub), sub_size))
		goto out;
	/* exp required; exp, nbf and iat (when present) integers in range */
	if (auth__jwt_time(c, "exp", true, &exp_s) ||
	    auth__jwt_time(c, "nbf", false, &nbf_s) ||
	    auth__jwt_time(c, "iat", false, &iat_s))
		goto out;
	if (nbf_s >= 0 && now < (nbf_s - AUTH_JWT_NBF_LEEWAY_S) * 1000)
		goto out; /* not yet valid */
	if (!(now < exp_s * 1000)) {
		r = AUTH_EXPIRED;
		goto out;
	}
	ASSERT(sub_size <= CORE_CUSTOMER_ID_SIZE_MAX);
	ASSERT(exp_s > 0 && exp_s <= AUTH_JWT_TIME_S_MAX);
	out->role = AUTH_CUSTOMER;
	out->expires_at = exp_s * 1000;
	memcpy(out->customer_id, json_string_value(sub), sub_size);
	out->customer_id[sub_size] = '\0';
	r = AUTH_OK;
out:
	json_decref(c);
	json_decref(h);
	return r;
}

bool auth_is_service_key(const struct auth_config *cfg, const char *token,
			 size_t token_size)
{
	return token && token_size > 0 && token_size <= AUTH_TOKEN_SIZE_MAX &&
	       auth__key_matches(cfg->service_key, token, token_size);
}

enum auth_result auth_bearer(const struct auth_config *cfg, const char *token,
			     size_t token_size, core_time now,
			     struct auth_principal *out)
{
	bool service, anon;
	enum auth_result r;

	memset(out, 0, sizeof(*out));
	out->role = AUTH_NONE;
	if (!token || token_size == 0)
		return AUTH_MISSING;
	if (token_size > AUTH_TOKEN_SIZE_MAX)
		return AUTH_BAD_TOKEN;
	/* Both compared, always. */
	service = auth__key_matches(cfg->service_key, token, token_size);
	anon = auth__key_matches(cfg->anon_key, token, token_size);
	if (service) {
		out->role = AUTH_SERVICE;
		return AUTH_OK;
	}
	if (anon) {
		out->role = AUTH_ANON;
		return AUTH_OK;
	}
	r = auth__jwt(cfg, token, token_size, now, out);
	ASSERT((r == AUTH_OK) == (out->role == AUTH_CUSTOMER));
	return r;
}

/* ---- Stripe ---- */

int auth_stripe_verify(const struct auth_config *cfg, const char *header,
		       size_t header_size, const void *body, size_t body_size,
		       core_time now)
{
	size_t secret_size = strnlen(cfg->stripe_secret, AUTH_KEY_SIZE_MAX);
	uint8_t want[AUTH__SHA256_SIZE];
	const char *t = NULL, *v1[AUTH__STRIPE_V1_COUNT_MAX];
	size_t t_size = 0, v1_size[AUTH__STRIPE_V1_COUNT_MAX];
	unsigned v1_count = 0;
	int64_t t_s = 0, now_s, skew_ms;
	bool match = false;
	size_t i = 0;

	if (secret_size == 0 || !header || header_size == 0 ||
	    header_size > AUTH__STRIPE_HEADER_SIZE_MAX)
		return -EINVAL;
	if (!body && body_size)
		return -EINVAL;
	while (i < header_size) {
		const char *item = header + i, *comma, *eq;
		size_t n;

		comma = memchr(item, ',', header_size - i);
		n = comma ? (size_t)(comma - item) : header_size - i;
		i += n + 1;
		n = auth__trim(&item, n);
		eq = memchr(item, '=', n);
		if (!eq || eq == item)
			return -EINVAL; /* not key=value */
		if (eq - item == 1 && item[0] == 't') {
			if (t)
				return -EINVAL; /* two timestamps */
			t = eq + 1;
			t_size = n - 2;
		} else if (eq - item == 2 && item[0] == 'v' && item[1] == '1') {
			if (v1_count == AUTH__STRIPE_V1_COUNT_MAX)
				return -EINVAL;
			v1[v1_count] = eq + 1;
			v1_size[v1_count++] = n - 3;
		}
		/* v0 and other schemes: ignored */
	}
	if (!t || t_size == 0 || t_size > AUTH__STRIPE_T_DIGITS_MAX ||
	    v1_count == 0)
		return -EINVAL;
	for (size_t k = 0; k < t_size; k++) {
		if (t[k] < '0' || t[k] > '9')
			return -EINVAL;
		t_s = t_s * 10 + (t[k] - '0');
	}
	if (auth__hmac_sha256(cfg->stripe_secret, secret_size,
			      (struct auth__part[]){ { t, t_size },
						     { ".", 1 },
						     { body, body_size } },
			      3, want) < 0)
		return -EINVAL;
	for (unsigned k = 0; k < v1_count; k++) {
		uint8_t got[AUTH__SHA256_SIZE];

		if (auth__hex_decode(v1[k], v1_size[k], got, sizeof(got)))
			match |= CRYPTO_memcmp(got, want, sizeof(got)) == 0;
	}
	if (!match)
		return -EINVAL;
	/* t_s < 10^15 and |now| < 2^63 ms: no overflow below */
	now_s = now / 1000;
	if (t_s > now_s + AUTH_STRIPE_TOLERANCE_MS / 1000 + 1 ||
	    t_s < now_s - AUTH_STRIPE_TOLERANCE_MS / 1000 - 1)
		return -ETIME;
	skew_ms = now - t_s * 1000;
	if (skew_ms > AUTH_STRIPE_TOLERANCE_MS ||
	    skew_ms < -AUTH_STRIPE_TOLERANCE_MS)
		return -ETIME;
	return 0;
}

/* ---- idempotency keys and fingerprints ---- */

struct auth__idem_head {
	uint64_t tag;
	uint64_t role;
	uint64_t customer_id_size;
	uint64_t key_size;
};
_Static_assert(sizeof(struct auth__idem_head) == 32, "idem head packed");

int auth_acts_for(const struct auth_principal *who, const char *s, size_t n,
		  char out[CORE_CUSTOMER_ID_SIZE_MAX + 1])
{
	if (who->role == AUTH_CUSTOMER) {
		if (n &&
		    (n != strnlen(who->customer_id, sizeof(who->customer_id)) ||
		     memcmp(s, who->customer_id, n) != 0))
			return -EPERM;
		memmove(out, who->customer_id, CORE_CUSTOMER_ID_SIZE_MAX + 1);
		return 0;
	}
	if (n == 0)
		return -ENOENT;
	if (n > CORE_CUSTOMER_ID_SIZE_MAX)
		return -EINVAL;
	memmove(out, s, n);
	out[n] = '\0';
	return 0;
}

enum core_payment auth_payment_for(const struct auth_principal *who,
				   enum core_payment asked)
{
	if (asked == CORE_PAY_NONE && who->role != AUTH_SERVICE)
		return CORE_PAY_AUTO;
	return asked;
}

/* Both hashes below are of the concatenation of their pieces: at once on a
 * stack buffer when it fits, else through XXH3's streaming state (whose
 * reset, updates and digest cost more than hashing a short input: 2.6% of
 * the network thread's samples at binary steady 2 x 256, 1.9% at once,
 * docs/benchmarks.md). XXH3 gives the same value either way, so the keys
 * and fingerprints already in logs and snapshots still match (test_auth
 * checks both paths against values of the streaming form). */
#define AUTH__HASH_BUF_SIZE 512

struct auth__piece {
	const void *p;
	size_t n;
};

/* The pieces joined on buf (AUTH__HASH_BUF_SIZE bytes): their size, or 0
 * when they do not fit (the caller streams them). */
static size_t auth__join(uint8_t *buf, const struct auth__piece *ps,
			 size_t count)
{
	size_t size = 0;

	for (size_t i = 0; i < count; i++)
		size += ps[i].n;
	if (size > AUTH__HASH_BUF_SIZE)
		return 0;
	for (size_t i = 0; i < count; i++) {
		if (ps[i].n)
			memcpy(buf, ps[i].p, ps[i].n);
		buf += ps[i].n;
	}
	return size;
}

void auth_idem_key(const struct auth_principal *who, const char *key,
		   size_t key_size, struct core_idem *out)
{
	struct auth__idem_head head = { 0 };
	uint8_t buf[AUTH__HASH_BUF_SIZE];
	XXH128_hash_t h;
	size_t n;

	if (!key || key_size == 0) {
		out->hi = out->lo = 0;
		return;
	}
	head.tag = AUTH__IDEM_TAG;
	head.role = (uint64_t)who->role;
	head.key_size = key_size;
	if (who->role == AUTH_CUSTOMER)
		head.customer_id_size =
			strnlen(who->customer_id, CORE_CUSTOMER_ID_SIZE_MAX);
	const struct auth__piece ps[] = {
		{ &head, sizeof(head) },
		{ who->customer_id, head.customer_id_size },
		{ key, key_size },
	};
	n = auth__join(buf, ps, sizeof(ps) / sizeof(ps[0]));
	if (n) {
		h = XXH3_128bits(buf, n);
	} else {
		XXH3_state_t st;

		XXH3_128bits_reset(&st);
		for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
			XXH3_128bits_update(&st, ps[i].p, ps[i].n);
		h = XXH3_128bits_digest(&st);
	}
	out->hi = h.high64;
	out->lo = h.low64;
	if ((out->hi | out->lo) == 0)
		out->lo = 1; /* 0 means "no key" */
	ASSERT(core_idem_present(out));
}

uint64_t auth_fingerprint(const void *a, size_t a_size, const void *b,
			  size_t b_size, const void *c, size_t c_size)
{
	uint64_t sizes[3] = { a_size, b_size, c_size };
	const struct auth__piece ps[] = {
		{ sizes, sizeof(sizes) },
		{ a, a_size },
		{ b, b_size },
		{ c, c_size },
	};
	uint8_t buf[AUTH__HASH_BUF_SIZE];
	XXH3_state_t st;
	size_t n = auth__join(buf, ps, sizeof(ps) / sizeof(ps[0]));

	if (n)
		return XXH3_64bits(buf, n);
	XXH3_64bits_reset(&st);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		if (ps[i].n)
			XXH3_64bits_update(&st, ps[i].p, ps[i].n);
	return XXH3_64bits_digest(&st);
}

/* ---- rate limits ---- */

struct auth__bucket {
	uint64_t key;
	double tokens;
	core_time last;
};

struct auth__stripe {
	pthread_mutex_t mu;
} __attribute__((aligned(64)));

struct auth__kind {
	double rate, burst; /* rate 0: no limit, no table */
	struct auth__bucket *buckets;
	struct auth__stripe stripes[AUTH__STRIPE_COUNT];
	_Atomic uint64_t refused; /* on the refusing path only */
};

struct auth_limiter {
	uint32_t bucket_count;
	struct auth__kind kinds[AUTH_LIMIT_KIND_COUNT];
};

void auth_limit_config_default(struct auth_limit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* Hundreds of bookings per second from one address (a venue's NAT,
	 * a load test, a frontend's server side). */
	cfg->rate[AUTH_LIMIT_ADDRESS] = 2000;
	cfg->burst[AUTH_LIMIT_ADDRESS] = 4000;
	/* Service and anon keys are used by frontends at high rates. */
	cfg->rate[AUTH_LIMIT_KEY] = 0;
	cfg->burst[AUTH_LIMIT_KEY] = 0;
	cfg->rate[AUTH_LIMIT_CUSTOMER] = 20;
	cfg->burst[AUTH_LIMIT_CUSTOMER] = 40;
	/* The service key is a backend's: no limit unless one is set. */
	cfg->rate[AUTH_LIMIT_SERVICE] = 0;
	cfg->burst[AUTH_LIMIT_SERVICE] = 0;
	cfg->bucket_count = 65536;
}

struct auth_limiter *auth_limiter_new(const struct auth_limit_config *cfg)
{
	struct auth_limiter *l;
	unsigned k, s;

	if (cfg->bucket_count == 0 ||
	    cfg->bucket_count > AUTH__BUCKET_COUNT_MAX) {
		errno = EINVAL;
		return NULL;
	}
	for (k = 0; k < AUTH_LIMIT_KIND_COUNT; k++) {
		if (!(cfg->rate[k] >= 0) || !isfinite(cfg->rate[k]) ||
		    !isfinite(cfg->burst[k]) ||
		    (cfg->rate[k] > 0 && !(cfg->burst[k] >= 1))) {
			errno = EINVAL;
			return NULL;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->bucket_count = cfg->bucket_count;
	for (k = 0; k < AUTH_LIMIT_KIND_COUNT; k++) {
		struct auth__kind *kd = &l->kinds[k];

		for (s = 0; s < AUTH__STRIPE_COUNT; s++)
			pthread_mutex_init(&kd->stripes[s].mu, NULL);
		kd->rate = cfg->rate[k];
		kd->burst = cfg->burst[k];
		if (kd->rate == 0)
			continue;
		kd->buckets = calloc(cfg->bucket_count, sizeof(*kd->buckets));
		if (!kd->buckets)
			goto out_free;
		/* key 0 and last 0: the first take (any key) refills to a
		 * full burst, or is reset to one */
		for (uint32_t b = 0; b < cfg->bucket_count; b++)
			kd->buckets[b].tokens = kd->burst;
	}
	return l;
out_free:
	auth_limiter_free(l);
	errno = ENOMEM;
	return NULL;
}

void auth_limiter_free(struct auth_limiter *l)
{
	if (!l)
		return;
	for (unsigned k = 0; k < AUTH_LIMIT_KIND_COUNT; k++) {
		for (unsigned s = 0; s < AUTH__STRIPE_COUNT; s++)
			pthread_mutex_destroy(&l->kinds[k].stripes[s].mu);
		free(l->kinds[k].buckets);
	}
	free(l);
}

static uint64_t auth__mix(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

bool auth_limit_take(struct auth_limiter *l, enum auth_limit_kind kind,
		     uint64_t key, core_time now, uint32_t *retry_after_s)
{
	struct auth__kind *kd;
	struct auth__bucket *b;
	uint64_t h;
	uint32_t index;
	bool allowed;
	double wait_s;

	ASSERT((unsigned)kind < AUTH_LIMIT_KIND_COUNT);
	if (retry_after_s)
		*retry_after_s = 0;
	kd = &l->kinds[kind];
	if (kd->rate == 0)
		return true;
	ASSERT(kd->buckets);
	h = auth__mix(key);
	index = (uint32_t)(((unsigned __int128)h * l->bucket_count) >> 64);
	ASSERT(index < l->bucket_count);
	b = &kd->buckets[index];

	pthread_mutex_lock(&kd->stripes[index % AUTH__STRIPE_COUNT].mu);
	if (b->key != key) { /* a stranger's bucket: take it over */
		b->key = key;
		b->tokens = kd->burst;
		b->last = now;
	} else if (now > b->last) {
		b->tokens += (double)(now - b->last) * kd->rate / 1000.0;
		if (b->tokens > kd->burst)
			b->tokens = kd->burst;
		b->last = now;
	}
	allowed = b->tokens >= 1.0;
	if (allowed)
		b->tokens -= 1.0;
	wait_s = (1.0 - b->tokens) / kd->rate;
	pthread_mutex_unlock(&kd->stripes[index % AUTH__STRIPE_COUNT].mu);

	if (!allowed)
		atomic_fetch_add_explicit(&kd->refused, 1,
					  memory_order_relaxed);
	if (!allowed && retry_after_s) {
		uint32_t s = AUTH__RETRY_AFTER_S_MAX;

		if (wait_s < AUTH__RETRY_AFTER_S_MAX) { /* ceil, at least 1 */
			s = (uint32_t)wait_s;
			s += (double)s < wait_s;
			if (s < 1)
				s = 1;
		}
		*retry_after_s = s;
		ASSERT(*retry_after_s >= 1);
	}
	return allowed;
}

void auth_limit_refusals(const struct auth_limiter *l,
			 uint64_t out[AUTH_LIMIT_KIND_COUNT])
{
	struct auth_limiter *m = (struct auth_limiter *)l; /* atomics */

	for (unsigned i = 0; i < AUTH_LIMIT_KIND_COUNT; i++)
		out[i] = atomic_load_explicit(&m->kinds[i].refused,
					      memory_order_relaxed);
}

const char *auth_limit_kind_name(enum auth_limit_kind kind)
{
	static const char *const names[AUTH_LIMIT_KIND_COUNT] = {
		[AUTH_LIMIT_ADDRESS] = "address",
		[AUTH_LIMIT_KEY] = "key",
		[AUTH_LIMIT_CUSTOMER] = "customer",
		[AUTH_LIMIT_SERVICE] = "service",
	};

	ASSERT((unsigned)kind < AUTH_LIMIT_KIND_COUNT);
	return names[kind];
}

uint64_t auth_limit_key(const void *p, size_t n)
{
	return XXH3_64bits_withSeed(p, n, AUTH__IDEM_TAG ^ 0x6c696d6974);
}
