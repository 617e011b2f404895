/*
 * jwt_test.h: minting JSON Web Tokens for the unit tests (test_auth,
 * test_http_*, test_bin_e2e*). jwt_b64url is base64url without padding;
 * jwt_sign builds header.payload.signature signed with HMAC(md, secret),
 * so a test can mint good tokens (HS256) and bad ones (other algorithms,
 * wrong secrets, hand-made headers).
 */
#ifndef BOOKD_TEST_JWT_H
#define BOOKD_TEST_JWT_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JWT_HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* Writes base64url(in[0..n)) and a NUL to out (4 * (n + 2) / 3 + 1 bytes
 * suffice); returns its length. */
static inline size_t jwt_b64url(const void *in, size_t n, char *out)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint8_t *p = in;
	size_t o = 0, i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

/* Writes header.payload.signature (each part base64url, the signature
 * HMAC(md, secret) over the first two) and a NUL to tok, which must hold
 * 4 * (strlen(header) + strlen(payload) + 64) / 3 + 8 bytes; returns its
 * length. */
static inline size_t jwt_sign(const char *header, const char *payload,
			      const char *secret, const EVP_MD *md, char *tok)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_size = 0;
	size_t n;

	n = jwt_b64url(header, strlen(header), tok);
	tok[n++] = '.';
	n += jwt_b64url(payload, strlen(payload), tok + n);
	HMAC(md, secret, (int)strlen(secret), (const uint8_t *)tok, n, mac,
	     &mac_size);
	tok[n++] = '.';
	n += jwt_b64url(mac, mac_size, tok + n);
	return n;
}

#endif
