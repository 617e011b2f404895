/*
 * fuzz_stripe.c: libFuzzer target for the Stripe webhook's signature
 * (auth_stripe_verify, api/auth.c): the Stripe-Signature header
 * "t=<seconds>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]" and the body.
 *
 * Input: byte 0 picks the mode, the rest is
 *  - even: header '\n' body, both as sent. Checked: accepted only when
 *    the header has exactly one t= of digits within the tolerance of now
 *    and a v1= that is the hex of HMAC-SHA256(secret, t "." body) (Stripe
 *    writes it lowercase; uppercase is the same bytes, as test_auth has
 *    it);
 *  - odd: two bytes of clock skew (seconds, signed) and a body, signed
 *    here as Stripe does. Checked: accepted exactly when the skew is
 *    within AUTH_STRIPE_TOLERANCE_MS (else -ETIME); signed with another
 *    secret, or with any one bit of the header or the body flipped
 *    (eight positions the input picks), refused (save a flip of a hex
 *    letter's case in v1: the same bytes).
 * corpus/stripe: signed events as tests/integration/stripe_standin.py and
 * test_http_writes send them, and damaged headers.
 */
#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOW INT64_C(1772438400123) /* 2026-03-02, not a whole second */
#define SECRET "whsec_0123456789abcdef"

static struct auth_config g_cfg;

/* The lowercase hex of HMAC-SHA256(secret, t "." body) into out[65]. */
static void sign(const char *secret, const char *t, size_t t_n,
		 const uint8_t *body, size_t n, char out[65])
{
	uint8_t mac[EVP_MAX_MD_SIZE], *in = malloc(t_n + 1 + n);
	unsigned mac_size = 0;

	if (!in)
		abort();
	memcpy(in, t, t_n);
	in[t_n] = '.';
	if (n)
		memcpy(in + t_n + 1, body, n);
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), in, t_n + 1 + n,
		  mac, &mac_size) ||
	    mac_size != 32)
		abort();
	free(in);
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
}

static size_t trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t'))
		(*s)++, n--;
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/* An accepted header, read again here: one t= of digits in tolerance and
 * a v1= equal to the signature. */
static void check_accepted(const char *hdr, size_t hdr_n, const uint8_t *body,
			   size_t n)
{
	const char *t = NULL;
	size_t t_n = 0, i = 0;
	int64_t t_s = 0;
	char want[65];
	bool match = false;

	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < hdr_n;) {
			const char *item = hdr + i;
			const char *comma = memchr(item, ',', hdr_n - i);
			size_t m = comma ? (size_t)(comma - item) : hdr_n - i;

			i += m + 1;
			m = trim(&item, m);
			if (pass == 0 && m >= 2 && item[0] == 't' &&
			    item[1] == '=') {
				if (t)
					abort(); /* two timestamps taken */
				t = item + 2;
				t_n = m - 2;
			} else if (pass == 1 && m == 67 &&
				   memcmp(item, "v1=", 3) == 0 &&
				   strncasecmp(item + 3, want, 64) == 0) {
				match = true;
			}
		}
		if (pass == 0) {
			if (!t || t_n == 0 || t_n > 15)
				abort();
			for (size_t k = 0; k < t_n; k++) {
				if (t[k] < '0' || t[k] > '9')
					abort();
				t_s = t_s * 10 + (t[k] - '0');
			}
			sign(SECRET, t, t_n, body, n, want);
		}
	}
	if (!match || NOW - t_s * 1000 > AUTH_STRIPE_TOLERANCE_MS ||
	    t_s * 1000 - NOW > AUTH_STRIPE_TOLERANCE_MS)
		abort();
}

static void check_signed(const uint8_t *data, size_t size)
{
	static char hdr[128];
	int16_t skew;
	size_t hdr_n, n;
	uint8_t *body;
	char t[24], mac[65];
	int t_n, rc, want;
	uint32_t seed = 2166136261u;

	if (size < 2)
		return;
	skew = (int16_t)(data[0] | data[1] << 8);
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	n = size - 2;
	body = malloc(n ? n : 1);
	if (!body)
		abort();
	memcpy(body, data + 2, n);
	t_n = snprintf(t, sizeof(t), "%" PRId64, NOW / 1000 + skew);
	sign(SECRET, t, (size_t)t_n, body, n, mac);
	hdr_n = (size_t)snprintf(hdr, sizeof(hdr), "t=%s,v1=%s", t, mac);
	/* NOW / 1000 + skew: |skew| s plus NOW's 123 ms */
	want = NOW - (NOW / 1000 + skew) * 1000 > AUTH_STRIPE_TOLERANCE_MS ||
			       (NOW / 1000 + skew) * 1000 - NOW >
				       AUTH_STRIPE_TOLERANCE_MS
		       ? -ETIME
		       : 0;
	rc = auth_stripe_verify(&g_cfg, hdr, hdr_n, body, n, NOW);
	if (rc != want)
		abort();
	for (int k = 0; k < 8; k++) {
		size_t bit =
			(seed + (uint32_t)k * 2654435761u) % ((hdr_n + n) * 8);
		uint8_t *at = bit / 8 < hdr_n ? (uint8_t *)hdr + bit / 8
					      : body + (bit / 8 - hdr_n);

		if (bit / 8 >= hdr_n - 64 && bit / 8 < hdr_n && bit % 8 == 5 &&
		    *at >= 'a' && *at <= 'f')
			continue; /* 'a' -> 'A': the same hex digit */
		*at ^= (uint8_t)(1u << (bit % 8));
		if (auth_stripe_verify(&g_cfg, hdr, hdr_n, body, n, NOW) == 0)
			abort(); /* a flipped bit verifies */
		*at ^= (uint8_t)(1u << (bit % 8));
	}
	sign("whsec_0123456789abcdeg", t, (size_t)t_n, body, n, mac);
	hdr_n = (size_t)snprintf(hdr, sizeof(hdr), "t=%s,v1=%s", t, mac);
	if (auth_stripe_verify(&g_cfg, hdr, hdr_n, body, n, NOW) != -EINVAL)
		abort(); /* another secret's */
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl;
	char *hdr;
	uint8_t *body;
	size_t hdr_n, n;

	if (!g_cfg.stripe_secret[0])
		strcpy(g_cfg.stripe_secret, SECRET);
	if (size < 1 || size > 16384)
		return 0;
	if (data[0] & 1) {
		check_signed(data + 1, size - 1);
		return 0;
	}
	nl = memchr(data + 1, '\n', size - 1);
	hdr_n = nl ? (size_t)(nl - data - 1) : size - 1;
	n = nl ? size - 1 - hdr_n - 1 : 0;
	/* exact-size copies: a read past either is ASan's */
	hdr = malloc(hdr_n ? hdr_n : 1);
	body = malloc(n ? n : 1);
	if (!hdr || !body)
		abort();
	memcpy(hdr, data + 1, hdr_n);
	if (n)
		memcpy(body, nl + 1, n);
	if (auth_stripe_verify(&g_cfg, hdr, hdr_n, body, n, NOW) == 0)
		check_accepted(hdr, hdr_n, body, n);
	free(hdr);
	free(body);
	return 0;
}
