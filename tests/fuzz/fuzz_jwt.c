/*
 * fuzz_jwt.c: libFuzzer target for the bearer tokens of api/auth.c
 * (auth_bearer: the service and anon keys, HS256 JWTs).
 *
 * Input: byte 0 picks the mode, the rest is
 *  - even: a token as sent. Checked: a token accepted as the service or
 *    the anon key is that key exactly; one accepted as a customer is
 *    header.payload.signature whose signature is exactly base64url
 *    (unpadded, canonical) of HMAC-SHA256(secret, header.payload), not
 *    expired, with a valid customer id;
 *  - odd: the claims (JSON text, up to its first NUL) of a token minted
 *    here with the secret. Checked: accepted only when the claims say so
 *    (sub a string equal to the customer id taken, exp an integer in the
 *    future); the same claims signed with another secret, and the token
 *    with any one bit flipped (eight positions the input picks), are
 *    refused as a bad token (never "expired": the signature is checked
 *    before any claim is read).
 * corpus/jwt: tokens and claims from tests/unit/test_auth.c's cases.
 */
#include "auth.h"
#include "jwt_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1772438400000) /* 2026-03-02 */
#define CLAIMS_MAX 1024

static struct auth_config g_cfg;

static void setup(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	strcpy(g_cfg.service_key, "svc-key-0123456789");
	strcpy(g_cfg.anon_key, "anon-key-0123456789");
	strcpy(g_cfg.jwt_secret, "jwt-secret-0123456789");
}

/* A token accepted as a customer: its signature is the secret's. */
static void check_signed(const char *tok, size_t n)
{
	const char *dot = memrchr(tok, '.', n);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_size = 0;
	char want[64];
	size_t want_n;

	if (!dot || memchr(tok, '.', (size_t)(dot - tok)) == NULL)
		abort();
	HMAC(EVP_sha256(), g_cfg.jwt_secret, (int)strlen(g_cfg.jwt_secret),
	     (const uint8_t *)tok, (size_t)(dot - tok), mac, &mac_size);
	want_n = jwt_b64url(mac, mac_size, want);
	if (want_n != n - (size_t)(dot + 1 - tok) ||
	    memcmp(want, dot + 1, want_n) != 0)
		abort();
}

static void check_token(const char *tok, size_t n)
{
	struct auth_principal p;
	enum auth_result r = auth_bearer(&g_cfg, tok, n, NOW, &p);

	if (r != AUTH_OK) {
		if (p.role != AUTH_NONE)
			abort();
		return;
	}
	switch (p.role) {
	case AUTH_SERVICE:
		if (n != strlen(g_cfg.service_key) ||
		    memcmp(tok, g_cfg.service_key, n) != 0)
			abort();
		break;
	case AUTH_ANON:
		if (n != strlen(g_cfg.anon_key) ||
		    memcmp(tok, g_cfg.anon_key, n) != 0)
			abort();
		break;
	case AUTH_CUSTOMER:
		check_signed(tok, n);
		if (p.customer_id[0] == '\0' || !(p.expires_at > NOW))
			abort();
		break;
	default: abort();
	}
}

static void check_minted(const uint8_t *data, size_t size)
{
	static char claims[CLAIMS_MAX + 1], tok[4 * (CLAIMS_MAX + 128) / 3 + 8];
	struct auth_principal p;
	enum auth_result r;
	json_error_t e;
	json_t *c;
	size_t n;
	uint32_t seed = 2166136261u;

	n = size > CLAIMS_MAX ? CLAIMS_MAX : size;
	memcpy(claims, data, n);
	claims[n] = '\0';
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;

	n = jwt_sign(JWT_HS256_HEADER, claims, g_cfg.jwt_secret, EVP_sha256(),
		     tok);
	r = auth_bearer(&g_cfg, tok, n, NOW, &p);
	if (r == AUTH_OK) {
		json_t *sub, *exp;

		c = json_loads(claims, JSON_REJECT_DUPLICATES, &e);
		sub = json_object_get(c, "sub");
		exp = json_object_get(c, "exp");
		if (p.role != AUTH_CUSTOMER || !json_is_string(sub) ||
		    strcmp(json_string_value(sub), p.customer_id) != 0 ||
		    json_string_length(sub) != strlen(p.customer_id) ||
		    !json_is_integer(exp) ||
		    !(json_integer_value(exp) * 1000 > NOW) ||
		    p.expires_at != json_integer_value(exp) * 1000)
			abort();
		json_decref(c);
	}
	/* every bit of the token counts */
	for (int k = 0; k < 8; k++) {
		size_t bit = (seed + (uint32_t)k * 2654435761u) % (n * 8);

		tok[bit / 8] ^= (char)(1u << (bit % 8));
		r = auth_bearer(&g_cfg, tok, n, NOW, &p);
		if (r != AUTH_BAD_TOKEN || p.role != AUTH_NONE)
			abort();
		tok[bit / 8] ^= (char)(1u << (bit % 8));
	}
	/* another secret */
	n = jwt_sign(JWT_HS256_HEADER, claims, "jwt-secret-0123456788",
		     EVP_sha256(), tok);
	if (auth_bearer(&g_cfg, tok, n, NOW, &p) != AUTH_BAD_TOKEN)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok;

	setup();
	if (size < 1 || size > AUTH_TOKEN_SIZE_MAX + 2)
		return 0;
	if (data[0] & 1) {
		check_minted(data + 1, size - 1);
		return 0;
	}
	tok = malloc(size); /* exact size: a read past it is ASan's */
	if (!tok)
		abort();
	memcpy(tok, data + 1, size - 1);
	check_token(tok, size - 1);
	free(tok);
	return 0;
}
