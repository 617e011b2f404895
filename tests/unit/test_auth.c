/*
 * test_auth.c: bearer keys, HS256 JWTs, Stripe signatures, CORS origins,
 * idempotency key scoping and the rate limiter (api/auth.h).
 *
 * JWTs and Stripe signatures are built here with OpenSSL's HMAC() and a
 * base64url encoder of the test's own, independent of auth.c's decoder.
 * Tokens are placed right before a PROT_NONE guard page (no NUL after),
 * so a read past token_size crashes the test.
 *
 * Prints "auth: P passed, F failed" (test functions; check.h check_run)
 * and exits 0 only when all passed.
 */
#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guard_test.h"
#include "jwt_test.h"

#define NOW INT64_C(1795000000000) /* 2026-11-18, ms */
#define NOW_S (NOW / 1000)
#define SECRET "jwt-secret-0123456789"

/* ---- guard page ---- */

static const char *guarded(const char *s, size_t n) { return guard_copy(s, n); }

/* ---- building tokens ---- */

/* header.payload.signature, signed with HMAC(md, secret). */
static char *jwt_md(const char *header, const char *payload, const char *secret,
		    const EVP_MD *md)
{
	static char tok[8192]; /* payloads here are under 1 KiB */

	jwt_sign(header, payload, secret, md, tok);
	return tok;
}

static char *jwt(const char *header, const char *payload, const char *secret)
{
	return jwt_md(header, payload, secret, EVP_sha256());
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static struct auth_config cfg;

static enum auth_result bearer_at(const char *tok, core_time now,
				  struct auth_principal *who)
{
	size_t n = strlen(tok);

	return auth_bearer(&cfg, guarded(tok, n), n, now, who);
}

static enum auth_result bearer(const char *tok, struct auth_principal *who)
{
	return bearer_at(tok, NOW, who);
}

static char *claims(const char *sub, const char *extra)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"sub\":\"%s\"%s}", sub, extra);
	return buf;
}

static char *exp_in(int64_t s)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), ",\"exp\":%" PRId64, NOW_S + s);
	return buf;
}

/* ---- tests ---- */

static void config_init(void)
{
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.service_key, "service-key-abcdef");
	strcpy(cfg.anon_key, "anon-key-123456");
	strcpy(cfg.jwt_secret, SECRET);
	strcpy(cfg.stripe_secret, "whsec_test");
}

/* auth_jwt_make (bookd --demo's sign-in link): its token is one
 * auth_bearer takes for that customer until exp, with that secret only. */
CHECK_TEST_FN(test_jwt_make)
{
	struct auth_principal who;
	char tok[512];
	int n;

	n = auth_jwt_make(SECRET, "alice", NOW_S + 60, NOW_S, tok, sizeof(tok));
	CHECK(n > 0 && (size_t)n == strlen(tok));
	CHECK(bearer(tok, &who) == AUTH_OK);
	CHECK(who.role == AUTH_CUSTOMER);
	CHECK(strcmp(who.customer_id, "alice") == 0);
	CHECK(who.expires_at == (NOW_S + 60) * 1000);
	CHECK(bearer_at(tok, (NOW_S + 61) * 1000, &who) == AUTH_EXPIRED);
	n = auth_jwt_make("another-secret", "alice", NOW_S + 60, NOW_S, tok,
			  sizeof(tok));
	CHECK(n > 0);
	CHECK(bearer(tok, &who) == AUTH_BAD_TOKEN);
	CHECK(auth_jwt_make(SECRET, "", NOW_S, NOW_S, tok, sizeof(tok)) ==
	      -EINVAL);
	CHECK(auth_jwt_make(SECRET, "a\"b", NOW_S, NOW_S, tok, sizeof(tok)) ==
	      -EINVAL);
	CHECK(auth_jwt_make("", "alice", NOW_S, NOW_S, tok, sizeof(tok)) ==
	      -EINVAL);
	CHECK(auth_jwt_make(SECRET, "alice", NOW_S, NOW_S, tok, 40) == -ENOSPC);
}

CHECK_TEST_FN(test_keys)
{
	struct auth_principal who;
	struct auth_config saved = cfg;

	CHECK(bearer("service-key-abcdef", &who) == AUTH_OK);
	CHECK(who.role == AUTH_SERVICE);
	CHECK(auth_is_service_key(&cfg, "service-key-abcdef", 18));
	CHECK(!auth_is_service_key(&cfg, "service-key-abcde", 17));
	CHECK(!auth_is_service_key(&cfg, "anon-key-123456", 15));
	CHECK(!auth_is_service_key(&cfg, "", 0));
	CHECK(!auth_is_service_key(&cfg, NULL, 0));
	CHECK(bearer("anon-key-123456", &who) == AUTH_OK);
	CHECK(who.role == AUTH_ANON);
	CHECK(bearer("service-key-abcde", &who) == AUTH_BAD_TOKEN); /* prefix */
	CHECK(who.role == AUTH_NONE);
	CHECK(bearer("service-key-abcdefg", &who) == AUTH_BAD_TOKEN);
	CHECK(bearer("service-key-abcdeF", &who) == AUTH_BAD_TOKEN);
	CHECK(bearer("Service-key-abcdef", &who) == AUTH_BAD_TOKEN);
	CHECK(bearer("x", &who) == AUTH_BAD_TOKEN);
	CHECK(auth_bearer(&cfg, "", 0, NOW, &who) == AUTH_MISSING);
	CHECK(auth_bearer(&cfg, NULL, 0, NOW, &who) == AUTH_MISSING);
	CHECK(who.role == AUTH_NONE);
	/* the length given is what counts, not a NUL */
	CHECK(auth_bearer(&cfg, "service-key-abcdefXYZ", 18, NOW, &who) ==
	      AUTH_OK);
	CHECK(who.role == AUTH_SERVICE);
	CHECK(auth_bearer(&cfg, "service-key-abcdef", 17, NOW, &who) ==
	      AUTH_BAD_TOKEN);
	/* unconfigured keys match nothing, not even an empty-looking token */
	cfg.service_key[0] = '\0';
	cfg.anon_key[0] = '\0';
	CHECK(bearer("service-key-abcdef", &who) == AUTH_BAD_TOKEN);
	CHECK(auth_bearer(&cfg, "\0", 1, NOW, &who) == AUTH_BAD_TOKEN);
	cfg = saved;
	/* over the size limit */
	{
		static char big[AUTH_TOKEN_SIZE_MAX + 2];

		memset(big, 'a', sizeof(big) - 1);
		CHECK(bearer(big, &who) == AUTH_BAD_TOKEN);
	}
}

/* Each claim extra[i], after `before`, makes cus_42's token refused as
 * AUTH_BAD_TOKEN, with no principal. */
static void check_bad_claims(const char *before, const char *const *extra,
			     size_t n)
{
	struct auth_principal who;
	char buf[256];

	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s%s", before, extra[i]);
		CHECK_MSG(bearer(jwt(HS256, claims("cus_42", buf), SECRET),
				 &who) == AUTH_BAD_TOKEN,
			  "%s", buf);
		CHECK(who.role == AUTH_NONE);
	}
}

CHECK_TEST_FN(test_jwt)
{
	struct auth_principal who;
	char *t, buf[16384];
	char sub65[70];

	/* valid */
	t = jwt(HS256, claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_OK);
	CHECK(who.role == AUTH_CUSTOMER);
	CHECK(strcmp(who.customer_id, "cus_42") == 0);
	t = jwt("{\"alg\":\"HS256\"}",
		claims("550e8400-e29b-41d4-a716-446655440000",
		       ",\"exp\":1795000060,\"iat\":1794999000"),
		SECRET);
	CHECK(bearer(t, &who) == AUTH_OK);
	CHECK(strcmp(who.customer_id, "550e8400-e29b-41d4-a716-446655440000") ==
	      0);

	/* wrong secret, tampered payload or signature */
	t = jwt(HS256, claims("cus_42", exp_in(60)), "other-secret");
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	CHECK(who.role == AUTH_NONE && who.customer_id[0] == '\0');
	t = jwt(HS256, claims("cus_42", exp_in(60)), SECRET);
	strcpy(buf, t);
	{
		char *dot = strchr(buf, '.');

		dot[2] = dot[2] == 'A' ? 'B' : 'A'; /* payload byte */
		CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
		strcpy(buf, t);
		dot = strrchr(buf, '.');
		dot[1] = dot[1] == 'A' ? 'B' : 'A'; /* signature byte */
		CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	}

	/* alg none: no signature, or a valid HS256 signature under "none" */
	{
		char h[256], p[256];
		size_t n;

		n = jwt_b64url("{\"alg\":\"none\"}", 14, h);
		h[n] = '\0';
		n = jwt_b64url(claims("cus_42", exp_in(60)),
			       strlen(claims("cus_42", exp_in(60))), p);
		p[n] = '\0';
		snprintf(buf, sizeof(buf), "%s.%s.", h, p);
		CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
		snprintf(buf, sizeof(buf), "%s.%s", h, p);
		CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	}
	t = jwt("{\"alg\":\"none\"}", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("{\"alg\":\"hs256\"}", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("{\"typ\":\"JWT\"}", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
		claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("[\"HS256\"]", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	/* HS512, signed with HS512 or (confused) with HS256 */
	t = jwt_md("{\"alg\":\"HS512\"}", claims("cus_42", exp_in(60)), SECRET,
		   EVP_sha512());
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("{\"alg\":\"HS512\"}", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt("{\"alg\":\"RS256\"}", claims("cus_42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);

	/* exp */
	t = jwt(HS256, claims("cus_42", exp_in(-1)), SECRET);
	CHECK(bearer(t, &who) == AUTH_EXPIRED);
	CHECK(who.role == AUTH_NONE);
	t = jwt(HS256, claims("cus_42", exp_in(0)), SECRET);
	CHECK(bearer(t, &who) == AUTH_EXPIRED);	       /* now == exp */
	CHECK(bearer_at(t, NOW - 1, &who) == AUTH_OK); /* 1 ms before */
	t = jwt(HS256, claims("cus_42", ""), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN); /* missing: invalid */
	CHECK(who.role == AUTH_NONE);
	/* not integer seconds, or out of range: invalid, never converted
	 * (1e300 * 1000 overflowed core_time: undefined behaviour) */
	{
		static const char *const bad[] = {
			",\"exp\":1e300",
			",\"exp\":-1e300",
			",\"exp\":1.0e10",
			",\"exp\":1795000060.5",
			",\"exp\":1795000060.0",
			",\"exp\":-1",
			",\"exp\":253402300800", /* 10000-01-01 */
			",\"exp\":9223372036854775807",
			",\"exp\":true",
			",\"exp\":[1895000000]",
		};
		check_bad_claims("", bad, CHECK_COUNT_OF(bad));
		/* bad nbf and iat beside a good exp */
		static const char *const bad_times[] = {
			",\"nbf\":1e300",
			",\"nbf\":-5",
			",\"iat\":1e300",
			",\"iat\":\"now\"",
		};
		check_bad_claims(exp_in(60), bad_times,
				 CHECK_COUNT_OF(bad_times));
		/* the largest exp: far future, valid, exact in ms */
		t = jwt(HS256, claims("cus_42", ",\"exp\":253402300799"),
			SECRET);
		CHECK(bearer(t, &who) == AUTH_OK);
		CHECK(who.expires_at == INT64_C(253402300799) * 1000);
		/* exp 0: long past */
		t = jwt(HS256, claims("cus_42", ",\"exp\":0"), SECRET);
		CHECK(bearer(t, &who) == AUTH_EXPIRED);
	}
	t = jwt(HS256, claims("cus_42", ",\"exp\":\"1895000000\""), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN); /* not a number */
	t = jwt(HS256, claims("cus_42", ",\"exp\":null"), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	/* nbf */
	snprintf(buf, sizeof(buf), "%s,\"nbf\":%" PRId64, exp_in(3600),
		 NOW_S + 600);
	t = jwt(HS256, claims("cus_42", buf), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	CHECK(bearer_at(t, NOW + 600 * 1000, &who) == AUTH_OK);
	snprintf(buf, sizeof(buf), "%s,\"nbf\":%" PRId64, exp_in(3600),
		 NOW_S - 600);
	t = jwt(HS256, claims("cus_42", buf), SECRET);
	CHECK(bearer(t, &who) == AUTH_OK);
	snprintf(buf, sizeof(buf), "%s,\"nbf\":\"soon\"", exp_in(3600));
	t = jwt(HS256, claims("cus_42", buf), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);

	/* sub */
	t = jwt(HS256, claims("cus 42", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt(HS256, claims("", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt(HS256, claims("a\\u0000b", exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	memset(sub65, 'x', 65);
	sub65[65] = '\0';
	t = jwt(HS256, claims(sub65, exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	sub65[64] = '\0';
	t = jwt(HS256, claims(sub65, exp_in(60)), SECRET);
	CHECK(bearer(t, &who) == AUTH_OK);
	CHECK(strcmp(who.customer_id, sub65) == 0);
	snprintf(buf, sizeof(buf), "{\"sub\":42%s}", exp_in(60));
	t = jwt(HS256, buf, SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	snprintf(buf, sizeof(buf), "{\"x\":1%s}", exp_in(60));
	t = jwt(HS256, buf, SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	snprintf(buf, sizeof(buf), "{\"sub\":\"a\",\"sub\":\"b\"%s}",
		 exp_in(60));
	t = jwt(HS256, buf, SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN); /* duplicate claim */
	t = jwt(HS256, "not json", SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
	t = jwt(HS256, "[1,2]", SECRET);
	CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);

	/* shape and base64 */
	t = jwt(HS256, claims("cus_42", exp_in(60)), SECRET);
	strcpy(buf, t);
	for (size_t k = 1; k < strlen(t); k++) { /* every truncation */
		enum auth_result r =
			auth_bearer(&cfg, guarded(t, k), k, NOW, &who);

		if (r != AUTH_BAD_TOKEN) {
			fprintf(stderr, "  truncated to %zu: %d\n", k, r);
			CHECK(r == AUTH_BAD_TOKEN);
		}
	}
	snprintf(buf, sizeof(buf), "%s.", t);
	CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN); /* 4 parts */
	snprintf(buf, sizeof(buf), "%s=", t);
	CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN); /* padding */
	strcpy(buf, t);
	*strchr(buf, '.') = '+'; /* not base64url */
	CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	strcpy(buf, t);
	buf[1] = '/';
	CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	strcpy(buf, t);
	buf[0] = '.';
	CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	CHECK(bearer("..", &who) == AUTH_BAD_TOKEN);
	CHECK(bearer("a.b.c", &who) == AUTH_BAD_TOKEN);
	/* a non-canonical last signature character (unused bits set) */
	{
		static const char abc[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		char *last;

		strcpy(buf, t);
		last = buf + strlen(buf) - 1; /* 43 chars: 2 unused bits */
		CHECK((strchr(abc, *last) - abc) % 4 == 0);
		*last = abc[(strchr(abc, *last) - abc) | 1];
		CHECK(bearer(buf, &who) == AUTH_BAD_TOKEN);
	}

	/* JWTs refused when no secret is configured */
	{
		struct auth_config saved = cfg;

		cfg.jwt_secret[0] = '\0';
		t = jwt(HS256, claims("cus_42", exp_in(60)), "");
		CHECK(bearer(t, &who) == AUTH_BAD_TOKEN);
		cfg = saved;
	}
}

static char *stripe_header(const char *secret, int64_t t, const char *body,
			   const char *prefix, const char *suffix)
{
	static char out[1024];
	char msg[4096], hex[65];
	uint8_t mac[32];
	unsigned mac_size = 0;
	int n = snprintf(msg, sizeof(msg), "%" PRId64 ".%s", t, body);

	HMAC(EVP_sha256(), secret, (int)strlen(secret), (uint8_t *)msg,
	     (size_t)n, mac, &mac_size);
	for (unsigned i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	snprintf(out, sizeof(out), "t=%" PRId64 ",%sv1=%s%s", t, prefix, hex,
		 suffix);
	return out;
}

static int stripe(const char *h, const char *body, core_time now)
{
	size_t n = strlen(h);

	return auth_stripe_verify(&cfg, guarded(h, n), n, body, strlen(body),
				  now);
}

CHECK_TEST_FN(test_stripe)
{
	const char *body =
		"{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}";
	const int64_t tol_s = AUTH_STRIPE_TOLERANCE_MS / 1000;
	char h[2048];

	CHECK(stripe(stripe_header("whsec_test", NOW_S, body, "", ""), body,
		     NOW) == 0);
	CHECK(stripe(stripe_header("whsec_other", NOW_S, body, "", ""), body,
		     NOW) == -EINVAL);
	CHECK(stripe(stripe_header("whsec_test", NOW_S, body, "", ""),
		     "{\"id\":\"evt_2\"}", NOW) == -EINVAL);
	/* tolerance, both directions */
	CHECK(stripe(stripe_header("whsec_test", NOW_S - tol_s, body, "", ""),
		     body, NOW) == 0);
	CHECK(stripe(stripe_header("whsec_test", NOW_S - tol_s - 1, body, "",
				   ""),
		     body, NOW) == -ETIME);
	CHECK(stripe(stripe_header("whsec_test", NOW_S + tol_s, body, "", ""),
		     body, NOW) == 0);
	CHECK(stripe(stripe_header("whsec_test", NOW_S + tol_s + 1, body, "",
				   ""),
		     body, NOW) == -ETIME);
	CHECK(stripe(stripe_header("whsec_test", 1, body, "", ""), body, NOW) ==
	      -ETIME);
	/* a stale header with a bad signature is just bad */
	CHECK(stripe(stripe_header("whsec_other", 1, body, "", ""), body,
		     NOW) == -EINVAL);
	/* several v1 (secret rotation), v0 ignored, order free */
	CHECK(stripe(stripe_header(
			     "whsec_test", NOW_S, body,
			     "v1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff,",
			     ",v0=deadbeef"),
		     body, NOW) == 0);
	snprintf(h, sizeof(h), "%s",
		 stripe_header("whsec_test", NOW_S, body, "", ""));
	{
		char v1[128], re[2048];
		const char *comma = strchr(h, ',');

		snprintf(v1, sizeof(v1), "%s", comma + 1);
		snprintf(re, sizeof(re), "v0=abc, %s, t=%" PRId64, v1, NOW_S);
		CHECK(stripe(re, body, NOW) == 0);
		/* uppercase hex is the same bytes */
		for (char *p = re; *p; p++)
			if (*p >= 'a' && *p <= 'f' && p > strstr(re, "v1="))
				*p = (char)(*p - 'a' + 'A');
		CHECK(stripe(re, body, NOW) == 0);
		/* only a v0 with the right value does not count */
		snprintf(re, sizeof(re), "t=%" PRId64 ",v0=%s", NOW_S, v1 + 3);
		CHECK(stripe(re, body, NOW) == -EINVAL);
		/* two timestamps */
		snprintf(re, sizeof(re), "t=%" PRId64 ",%s,t=1", NOW_S, v1);
		CHECK(stripe(re, body, NOW) == -EINVAL);
		/* truncated signature */
		snprintf(re, sizeof(re), "%s", h);
		re[strlen(re) - 1] = '\0';
		CHECK(stripe(re, body, NOW) == -EINVAL);
		/* every truncation of the header is refused */
		for (size_t k = 0; k < strlen(h); k++)
			CHECK(auth_stripe_verify(&cfg, guarded(h, k), k, body,
						 strlen(body), NOW) == -EINVAL);
	}
	CHECK(stripe("", body, NOW) == -EINVAL);
	CHECK(stripe("garbage", body, NOW) == -EINVAL);
	CHECK(stripe("t=,v1=00", body, NOW) == -EINVAL);
	CHECK(stripe("t=12a,v1=00", body, NOW) == -EINVAL);
	CHECK(stripe("t=-1,v1=00", body, NOW) == -EINVAL);
	CHECK(stripe("t=99999999999999999999999,v1=00", body, NOW) == -EINVAL);
	snprintf(h, sizeof(h), "t=%" PRId64, NOW_S);
	CHECK(stripe(h, body, NOW) == -EINVAL); /* no v1 */
	CHECK(stripe("v1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		     body, NOW) == -EINVAL); /* no t */
	/* no secret configured: everything refused */
	{
		struct auth_config saved = cfg;

		cfg.stripe_secret[0] = '\0';
		CHECK(stripe(stripe_header("", NOW_S, body, "", ""), body,
			     NOW) == -EINVAL);
		cfg = saved;
	}
	/* an empty body signs too */
	CHECK(stripe(stripe_header("whsec_test", NOW_S, "", "", ""), "", NOW) ==
	      0);
}

CHECK_TEST_FN(test_origins)
{
	struct auth_config c;
	char long_item[AUTH_KEY_SIZE_MAX + 8], many[4096];

	memset(&c, 0, sizeof(c));
	CHECK(!auth_origin_allowed(&c, "https://a.example", 17));
	CHECK(auth_config_set_origins(&c,
				      "https://a.example, https://b.example:8443") ==
	      0);
	CHECK(c.origin_count == 2);
	CHECK(auth_origin_allowed(&c, "https://a.example", 17));
	CHECK(auth_origin_allowed(&c, "https://b.example:8443", 22));
	CHECK(!auth_origin_allowed(&c, "https://a.example.evil.com", 26));
	CHECK(!auth_origin_allowed(&c, "https://a.exampl", 16));
	CHECK(!auth_origin_allowed(&c, "http://a.example", 16));
	CHECK(!auth_origin_allowed(&c, "https://b.example", 17));
	CHECK(!auth_origin_allowed(&c, "", 0));
	CHECK(!auth_origin_allowed(&c, NULL, 0));
	CHECK(auth_origin_allowed(&c, "https://a.exampleXX", 17)); /* by size */

	CHECK(auth_config_set_origins(&c, "*") == 0);
	CHECK(auth_origin_allowed(&c, "https://anything.test", 21));
	CHECK(auth_config_set_origins(&c, ",, ,") == 0 && c.origin_count == 0);
	CHECK(auth_config_set_origins(&c, "") == 0 && c.origin_count == 0);
	CHECK(auth_config_set_origins(&c, NULL) == 0 && c.origin_count == 0);

	/* too long, too many: refused, cfg unchanged */
	CHECK(auth_config_set_origins(&c, "https://keep.example") == 0);
	memset(long_item, 'a', AUTH_KEY_SIZE_MAX);
	long_item[AUTH_KEY_SIZE_MAX] = '\0';
	CHECK(auth_config_set_origins(&c, long_item) == -EINVAL);
	long_item[AUTH_KEY_SIZE_MAX - 1] = '\0';
	{
		struct auth_config d = { 0 };

		CHECK(auth_config_set_origins(&d, long_item) == 0);
		CHECK(d.origin_count == 1);
	}
	many[0] = '\0';
	for (int i = 0; i <= AUTH_ORIGIN_COUNT_MAX; i++)
		sprintf(many + strlen(many), "https://o%d.example,", i);
	CHECK(auth_config_set_origins(&c, many) == -EINVAL);
	CHECK(c.origin_count == 1);
	CHECK(auth_origin_allowed(&c, "https://keep.example", 20));
	*strrchr(many, 'h') = '\0'; /* exactly the maximum */
	CHECK(auth_config_set_origins(&c, many) == 0);
	CHECK(c.origin_count == AUTH_ORIGIN_COUNT_MAX);
	CHECK(auth_origin_allowed(&c, "https://o31.example", 19));
}

static bool idem_eq(const struct core_idem *a, const struct core_idem *b)
{
	return a->hi == b->hi && a->lo == b->lo;
}

static const struct auth_config *cfg_now;

/* auth_client_address under cfg_now, checking its length. */
static const char *CLIENT(const char *peer, const char *xff)
{
	static char a[AUTH_ADDRESS_SIZE];
	size_t n = auth_client_address(cfg_now, peer, xff,
				       xff ? strlen(xff) : 0, a);

	CHECK(n == strlen(a));
	return a;
}

/* BOOKD_TRUSTED_PROXIES and the client address for the address limit. */
CHECK_TEST_FN(test_proxies)
{
	struct auth_config c;

	memset(&c, 0, sizeof(c));
	cfg_now = &c;
	/* No proxies: the peer, whatever the header says. */
	CHECK(strcmp(CLIENT("127.0.0.1", "203.0.113.7"), "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("unix", "203.0.113.7"), "unix") == 0);

	CHECK(auth_config_set_proxies(&c, "10.0.0.0/8, 127.0.0.1 ,::1,"
					  "2001:db8::/32,unix") == 0);
	CHECK(c.proxy_count == 5);
	/* An untrusted peer: its header is not believed. */
	CHECK(strcmp(CLIENT("192.0.2.1", "203.0.113.7"), "192.0.2.1") == 0);
	CHECK(strcmp(CLIENT("11.0.0.1", "203.0.113.7"), "11.0.0.1") == 0);
	/* A trusted peer: the right-most untrusted entry. */
	CHECK(strcmp(CLIENT("127.0.0.1", "203.0.113.7"), "203.0.113.7") == 0);
	CHECK(strcmp(CLIENT("127.0.0.1", NULL), "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("127.0.0.1", ""), "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("10.9.8.7", "6.6.6.6, 203.0.113.7, 10.0.0.2"),
		     "203.0.113.7") ==
	      0); /* the forged 6.6.6.6 is left of it */
	CHECK(strcmp(CLIENT("unix", " 203.0.113.7 "), "203.0.113.7") == 0);
	CHECK(strcmp(CLIENT("::1", "2001:DB8::1, 2001:0db9:0::5"),
		     "2001:db9::5") == 0); /* normalised */
	CHECK(strcmp(CLIENT("::1", "[2001:db9::5]:443"), "2001:db9::5") == 0);
	CHECK(strcmp(CLIENT("::1", "203.0.113.7:5555"), "203.0.113.7") == 0);
	/* All trusted: the left-most. */
	CHECK(strcmp(CLIENT("127.0.0.1", "10.0.0.3, 10.0.0.2"), "10.0.0.3") ==
	      0);
	/* Malformed: the walk stops at the last good hop. */
	CHECK(strcmp(CLIENT("127.0.0.1", "203.0.113.7, unknown"),
		     "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("127.0.0.1", "unknown, 10.0.0.2"), "10.0.0.2") ==
	      0);
	CHECK(strcmp(CLIENT("127.0.0.1", "203.0.113.7,"), "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("127.0.0.1", "1.2.3.4.5"), "127.0.0.1") == 0);
	CHECK(strcmp(CLIENT("127.0.0.1", "[::1"), "127.0.0.1") == 0);
	/* Prefixes: /8 holds 10.x only; a /0 trusts everyone. */
	CHECK(strcmp(CLIENT("10.255.255.255", "203.0.113.7"), "203.0.113.7") ==
	      0);
	CHECK(strcmp(CLIENT("9.255.255.255", "203.0.113.7"), "9.255.255.255") ==
	      0);
	CHECK(auth_config_set_proxies(&c, "192.168.1.128/25") == 0);
	CHECK(strcmp(CLIENT("192.168.1.200", "203.0.113.7"), "203.0.113.7") ==
	      0);
	CHECK(strcmp(CLIENT("192.168.1.100", "203.0.113.7"), "192.168.1.100") ==
	      0);
	CHECK(strcmp(CLIENT("unix", "203.0.113.7"), "unix") == 0);
	/* Bad lists: refused whole, the old list kept. */
	static const char *const bad[] = {
		"10.0.0.0/33", "::1/129",
		"10.0.0.1/",   "10.0.0.1/x",
		"nope",	       "10.0.0.1:80",
		"[::1]",       "10.0.0.1/0008",
		"10.0.0.256",  "127.0.0.1, localhost",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(auth_config_set_proxies(&c, bad[i]) == -EINVAL);
		CHECK(c.proxy_count == 1);
	}
	{
		char many[AUTH_PROXY_COUNT_MAX * 16 + 16] = "";
		for (int i = 0; i <= AUTH_PROXY_COUNT_MAX; i++)
			sprintf(many + strlen(many), "10.0.0.%d,", i);
		CHECK(auth_config_set_proxies(&c, many) == -EINVAL);
	}
	CHECK(auth_config_set_proxies(&c, " , ") == 0 && c.proxy_count == 0);
	CHECK(auth_config_set_proxies(&c, NULL) == 0 && c.proxy_count == 0);
}

CHECK_TEST_FN(test_idem)
{
	struct auth_principal alice = { .role = AUTH_CUSTOMER,
					.customer_id = "alice" };
	struct auth_principal bob = { .role = AUTH_CUSTOMER,
				      .customer_id = "bob" };
	struct auth_principal ab = { .role = AUTH_CUSTOMER,
				     .customer_id = "ab" };
	struct auth_principal a = { .role = AUTH_CUSTOMER, .customer_id = "a" };
	struct auth_principal svc = { .role = AUTH_SERVICE, .customer_id = "" };
	struct auth_principal svc_junk = { .role = AUTH_SERVICE,
					   .customer_id = "alice" };
	struct auth_principal anon = { .role = AUTH_ANON, .customer_id = "" };
	struct core_idem k1, k2, k3;

	auth_idem_key(&alice, "key-1", 5, &k1);
	auth_idem_key(&alice, "key-1", 5, &k2);
	CHECK(core_idem_present(&k1));
	CHECK(idem_eq(&k1, &k2));
	auth_idem_key(&bob, "key-1", 5, &k2);
	CHECK(!idem_eq(&k1, &k2)); /* same key, other customer */
	auth_idem_key(&svc, "key-1", 5, &k2);
	CHECK(!idem_eq(&k1, &k2)); /* customer vs service */
	auth_idem_key(&anon, "key-1", 5, &k3);
	CHECK(!idem_eq(&k2, &k3)); /* service vs anon */
	auth_idem_key(&svc_junk, "key-1", 5, &k3);
	CHECK(idem_eq(&k2, &k3)); /* service ignores customer_id */
	auth_idem_key(&alice, "key-2", 5, &k2);
	CHECK(!idem_eq(&k1, &k2));
	/* ("ab", "c") vs ("a", "bc"): the boundary is encoded */
	auth_idem_key(&ab, "c", 1, &k1);
	auth_idem_key(&a, "bc", 2, &k2);
	CHECK(!idem_eq(&k1, &k2));
	/* no key: not present; the fingerprint is left to the caller */
	k1.hi = k1.lo = 5;
	k1.fingerprint = 77;
	auth_idem_key(&alice, "", 0, &k1);
	CHECK(!core_idem_present(&k1));
	CHECK(k1.fingerprint == 77);
	auth_idem_key(&alice, NULL, 0, &k1);
	CHECK(!core_idem_present(&k1));
	k1.fingerprint = 78;
	auth_idem_key(&alice, "x", 1, &k1);
	CHECK(k1.fingerprint == 78 && core_idem_present(&k1));

	/* fingerprints: deterministic, boundaries count */
	CHECK(auth_fingerprint("POST", 4, "/v1/x", 5, "{}", 2) ==
	      auth_fingerprint("POST", 4, "/v1/x", 5, "{}", 2));
	CHECK(auth_fingerprint("POST", 4, "/v1/x", 5, "{}", 2) !=
	      auth_fingerprint("POST", 4, "/v1/x", 5, "{ }", 3));
	CHECK(auth_fingerprint("ab", 2, "c", 1, "", 0) !=
	      auth_fingerprint("a", 1, "bc", 2, "", 0));
	CHECK(auth_fingerprint("a", 1, "", 0, "b", 1) !=
	      auth_fingerprint("a", 1, "b", 1, "", 0));
	CHECK(auth_fingerprint(NULL, 0, NULL, 0, NULL, 0) ==
	      auth_fingerprint("", 0, "", 0, "", 0));
	CHECK(auth_limit_key("alice", 5) == auth_limit_key("alice", 5));
	CHECK(auth_limit_key("alice", 5) != auth_limit_key("alicf", 5));
}

static struct auth_limiter *limiter(double rate, double burst, uint32_t count)
{
	struct auth_limit_config c;

	auth_limit_config_default(&c);
	c.rate[AUTH_LIMIT_CUSTOMER] = rate;
	c.burst[AUTH_LIMIT_CUSTOMER] = burst;
	c.bucket_count = count;
	return auth_limiter_new(&c);
}

static unsigned take_n(struct auth_limiter *l, uint64_t key, core_time now,
		       unsigned n)
{
	unsigned ok = 0;
	uint32_t retry;

	for (unsigned i = 0; i < n; i++)
		ok += auth_limit_take(l, AUTH_LIMIT_CUSTOMER, key, now, &retry);
	return ok;
}

struct race {
	struct auth_limiter *l;
	uint64_t key;
	unsigned tries, allowed;
};

static void *race_main(void *p)
{
	struct race *r = p;

	r->allowed = take_n(r->l, r->key, NOW, r->tries);
	return NULL;
}

CHECK_TEST_FN(test_limiter)
{
	struct auth_limit_config c;
	struct auth_limiter *l;
	uint32_t retry = 99;

	auth_limit_config_default(&c);
	CHECK(c.rate[AUTH_LIMIT_ADDRESS] >= 500); /* hundreds per second */
	CHECK(c.burst[AUTH_LIMIT_ADDRESS] >= c.rate[AUTH_LIMIT_ADDRESS]);
	CHECK(c.rate[AUTH_LIMIT_KEY] == 0);
	CHECK(c.rate[AUTH_LIMIT_CUSTOMER] > 0);
	CHECK(c.bucket_count == 65536);
	l = auth_limiter_new(&c);
	CHECK(l != NULL);
	/* the defaults: a burst of 4000 from one address, keys unlimited */
	CHECK(l && take_n(l, 1, NOW, 0) == 0);
	if (l) {
		unsigned ok = 0;

		for (int i = 0; i < 5000; i++)
			ok += auth_limit_take(l, AUTH_LIMIT_ADDRESS, 7, NOW,
					      &retry);
		CHECK(ok == 4000);
		for (int i = 0; i < 100000; i++)
			ok += auth_limit_take(l, AUTH_LIMIT_KEY, 7, NOW,
					      &retry);
		CHECK(ok == 104000);
		CHECK(retry == 0);
		auth_limiter_free(l);
	}

	/* burst, then refusal with retry_after; refill by elapsed time */
	l = limiter(10, 5, 1024);
	CHECK(take_n(l, 42, NOW, 5) == 5);
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 42, NOW, &retry));
	CHECK(retry == 1);
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 42, NOW + 99, &retry));
	CHECK(auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 42, NOW + 100, &retry));
	CHECK(retry == 0);
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 42, NOW + 100, &retry));
	/* other keys are independent */
	CHECK(take_n(l, 43, NOW, 10) == 5);
	/* a long pause refills to the burst, not beyond */
	CHECK(take_n(l, 42, NOW + 3600 * 1000, 10) == 5);
	/* time running backwards refills nothing */
	CHECK(take_n(l, 42, NOW, 10) == 0);
	CHECK(take_n(l, 42, NOW + 3600 * 1000 + 200, 10) == 2);
	auth_limiter_free(l);

	/* slow rates: retry_after rounds up */
	l = limiter(0.5, 1, 16);
	CHECK(auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 1, NOW, &retry));
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 1, NOW, &retry));
	CHECK(retry == 2);
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 1, NOW + 1500, &retry));
	CHECK(retry == 1);
	CHECK(auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 1, NOW + 2000, NULL));
	auth_limiter_free(l);
	l = limiter(3, 1, 16);
	CHECK(take_n(l, 1, NOW, 2) == 1);
	CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 1, NOW, &retry));
	CHECK(retry == 1); /* 1/3 s, still at least 1 */
	auth_limiter_free(l);

	/* one bucket: a colliding key takes it over with a full burst */
	l = limiter(1, 3, 1);
	CHECK(take_n(l, 1, NOW, 5) == 3);
	CHECK(take_n(l, 2, NOW, 5) == 3);
	CHECK(take_n(l, 1, NOW, 5) == 3);
	/* key 0 is a key like any other */
	CHECK(take_n(l, 0, NOW, 5) == 3);
	auth_limiter_free(l);

	/* invalid configurations */
	CHECK(limiter(10, 5, 0) == NULL);
	CHECK(limiter(-1, 5, 16) == NULL);
	CHECK(limiter(10, 0.5, 16) == NULL);

	/* two threads on one key and on many: counts stay exact */
	l = limiter(1e-9, 60000, 4096);
	{
		struct race r[2] = { { l, 5, 50000, 0 }, { l, 5, 50000, 0 } };
		pthread_t th[2];

		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, race_main, &r[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		CHECK(r[0].allowed + r[1].allowed == 60000);
		CHECK(!auth_limit_take(l, AUTH_LIMIT_CUSTOMER, 5, NOW, &retry));
		CHECK(retry >= 1);
	}
	auth_limiter_free(l);
}

/* Whom a request acts for, and the payment a principal gets: the rules
 * both protocols apply (auth_acts_for, auth_payment_for). */
CHECK_TEST_FN(test_acts_for)
{
	struct auth_principal svc = { .role = AUTH_SERVICE };
	struct auth_principal cust = { .role = AUTH_CUSTOMER };
	struct auth_principal anon = { .role = AUTH_ANON };
	char out[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	char same[CORE_CUSTOMER_ID_SIZE_MAX + 1] = "alice";
	char long_id[CORE_CUSTOMER_ID_SIZE_MAX + 2];

	strcpy(cust.customer_id, "alice");
	/* a customer: itself, named or implied; never another */
	memset(out, 'x', sizeof(out));
	CHECK(auth_acts_for(&cust, NULL, 0, out) == 0 &&
	      strcmp(out, "alice") == 0);
	CHECK(auth_acts_for(&cust, "alice", 5, out) == 0 &&
	      strcmp(out, "alice") == 0);
	CHECK(auth_acts_for(&cust, "bob", 3, out) == -EPERM);
	CHECK(auth_acts_for(&cust, "alic", 4, out) == -EPERM);
	CHECK(auth_acts_for(&cust, "alicex", 6, out) == -EPERM);
	/* the service key: whom it names, and it must name one */
	CHECK(auth_acts_for(&svc, "bob", 3, out) == 0 &&
	      strcmp(out, "bob") == 0);
	CHECK(auth_acts_for(&svc, NULL, 0, out) == -ENOENT);
	CHECK(auth_acts_for(&anon, NULL, 0, out) == -ENOENT);
	memset(long_id, 'a', sizeof(long_id));
	CHECK(auth_acts_for(&svc, long_id, sizeof(long_id), out) == -EINVAL);
	/* in place (the id already in the request's buffer) */
	CHECK(auth_acts_for(&svc, same, 5, same) == 0 &&
	      strcmp(same, "alice") == 0);
	CHECK(auth_acts_for(&cust, same, 5, same) == 0 &&
	      strcmp(same, "alice") == 0);

	/* only the service key confirms without payment */
	CHECK(auth_payment_for(&svc, CORE_PAY_NONE) == CORE_PAY_NONE);
	CHECK(auth_payment_for(&cust, CORE_PAY_NONE) == CORE_PAY_AUTO);
	CHECK(auth_payment_for(&anon, CORE_PAY_NONE) == CORE_PAY_AUTO);
	CHECK(auth_payment_for(&cust, CORE_PAY_STRIPE) == CORE_PAY_STRIPE);
	CHECK(auth_payment_for(&cust, CORE_PAY_AUTO) == CORE_PAY_AUTO);
	CHECK(auth_payment_for(&svc, CORE_PAY_AUTO) == CORE_PAY_AUTO);
}

/* The keys and fingerprints of the streaming form (what logs and snapshots
 * already hold), on both sides of the one-shot buffer's size: a key of a
 * 63-byte customer fits up to 417 bytes, a fingerprint of "POST" and a
 * piece up to 484, of "ab" and a piece up to 486. */
static void fill_pattern(char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(c + (char)(i % 23));
}

CHECK_TEST_FN(test_idem_hash_compatible)
{
	static const struct {
		size_t key_size;
		uint64_t cust[2], svc[2];
	} keys[] = {
		{ 5,
		  { UINT64_C(0x65d5c1b7576502df),
		    UINT64_C(0x17493aeebd02c8c9) },
		  { UINT64_C(0x3f1e77a8a3e32b9c),
		    UINT64_C(0x80d5fd2bfee6ed8b) } },
		{ 416,
		  { UINT64_C(0xb21e0c32ef4d851e),
		    UINT64_C(0xa9a42c4fb25ae33b) },
		  { UINT64_C(0xa734aab82983fe8e),
		    UINT64_C(0x0d864ea98d763c9b) } },
		{ 417,
		  { UINT64_C(0xf55908ea46eea74f),
		    UINT64_C(0x010abaadc75b7a81) },
		  { UINT64_C(0x0b18cebd819bcac1),
		    UINT64_C(0x4a3d15996bac8f98) } },
		{ 418,
		  { UINT64_C(0xf452fb25d92e7c94),
		    UINT64_C(0x4c9d27f24096e6f4) },
		  { UINT64_C(0xd70994aee3b1b881),
		    UINT64_C(0xd00fb00c5ded937d) } },
		{ 1100,
		  { UINT64_C(0xcfdd22130e095d8e),
		    UINT64_C(0xd6e52f26ccc010a4) },
		  { UINT64_C(0xcc68238415d7737c),
		    UINT64_C(0x9a70210099865c49) } },
	};
	static const struct {
		size_t size;
		uint64_t post, ab;
	} fps[] = {
		{ 0, UINT64_C(0x68de9043859b9fdb),
		  UINT64_C(0xfff70d9c090a03eb) },
		{ 7, UINT64_C(0xac65380635145701),
		  UINT64_C(0x46ccbe24d3534c0e) },
		{ 484, UINT64_C(0xbc12aaf9dac8f853),
		  UINT64_C(0x3300b7c73b6d1f6a) },
		{ 485, UINT64_C(0xff7f24779f65f0a7),
		  UINT64_C(0x11258120735f6398) },
		{ 486, UINT64_C(0xc0e2af49b36dea27),
		  UINT64_C(0x3cf3f19804af61c7) },
		{ 487, UINT64_C(0xe8837f9890f40d3e),
		  UINT64_C(0xf15752bcd334739c) },
		{ 1000, UINT64_C(0x224cafe849e25cd3),
		  UINT64_C(0x771cdc25cd1e280b) },
	};
	static char big[1200];
	struct auth_principal cust = { .role = AUTH_CUSTOMER };
	struct auth_principal svc = { .role = AUTH_SERVICE, .customer_id = "" };
	struct core_idem k;

	fill_pattern(big, sizeof(big), 'a');
	memset(cust.customer_id, 0, sizeof(cust.customer_id));
	fill_pattern(cust.customer_id, 63, 'A');
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		auth_idem_key(&cust, big, keys[i].key_size, &k);
		CHECK(k.hi == keys[i].cust[0] && k.lo == keys[i].cust[1]);
		auth_idem_key(&svc, big, keys[i].key_size, &k);
		CHECK(k.hi == keys[i].svc[0] && k.lo == keys[i].svc[1]);
	}
	for (size_t i = 0; i < sizeof(fps) / sizeof(fps[0]); i++) {
		CHECK(auth_fingerprint("POST", 4, big, fps[i].size, NULL, 0) ==
		      fps[i].post);
		CHECK(auth_fingerprint(NULL, 0, "ab", 2, big + 3,
				       fps[i].size) == fps[i].ab);
	}
}

int main(void)
{
	guard_init(2 * (size_t)sysconf(_SC_PAGESIZE));
	config_init();
	return check_run_all("auth", NULL);
}
