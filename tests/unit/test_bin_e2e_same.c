/*
 * test_bin_e2e_same.c: bookd end to end: the same inputs (good and bad ids,
 * numbers, strings, keys) over HTTP and over the binary protocol get the
 * same answers (docs/protocol.md).
 *
 * Starting bookd, connecting, the catalogue and main: bin_e2e_test.h.
 */
#include "bin_e2e_test.h"

/* ---- both protocols accept the same inputs ---- */

/* One HTTP request on its own connection: the answer's status. */
static int http_status(const char *method, const char *path,
		       const char *headers, const char *body, size_t body_n)
{
	static char req[70000], ans[65536];
	int n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: t\r\n"
		     "Authorization: Bearer " SVC "\r\nConnection: close\r\n"
		     "%sContent-Length: %zu\r\n\r\n",
		     method, path, headers, body_n);
	if (n < 0 || (size_t)n + body_n > sizeof(req))
		return -1;
	memcpy(req + n, body, body_n);
	return bookd_test_http(http_addr, req, (size_t)n + body_n, ans,
			       sizeof(ans));
}

/* JSON string of n bytes: quotes, backslash and control bytes escaped
 * (NUL as \u0000), every other byte as it is (so invalid UTF-8 stays
 * invalid). */
static size_t json_str(char *o, const char *v, size_t n)
{
	size_t k = 0;

	o[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)v[i];
		if (b == '"' || b == '\\') {
			o[k++] = '\\';
			o[k++] = (char)b;
		} else if (b < 0x20) {
			k += (size_t)sprintf(o + k, "\\u%04x", b);
		} else {
			o[k++] = (char)b;
		}
	}
	o[k++] = '"';
	return k;
}

/* A binary request on fd with one string field (name, n bytes) besides
 * the fixed ones: the answer's code. */
static int bin_one(int fd, const char *op, const char *name, const char *v,
		   size_t n, const char *k1, const char *v1, const char *k2,
		   uint64_t v2)
{
	static uint64_t id = 100;
	struct buf buf = { 0 };
	msgpack_packer pk;
	struct bc_answer a;
	size_t start;
	int rc;

	frame_map_start(&buf, &pk, &start, 3 + (k1 != NULL) + (k2 != NULL));
	mp_pack_kv_uint(&pk, "id", ++id);
	mp_pack_kv_str(&pk, "op", op);
	mp_pack_str(&pk, name);
	mp_pack_strn(&pk, v, n);
	if (k1)
		mp_pack_kv_str(&pk, k1, v1);
	if (k2)
		mp_pack_kv_uint(&pk, k2, v2);
	mp_frame_end(buf.data, start, buf.size);
	rc = send_all(fd, buf.data, buf.size) ? raw_read_answer(fd, &a) : -1;
	buf_free(&buf);
	if (rc != 0)
		return -1;
	CHECK(a.req_id == id);
	return a.code;
}

struct same_case {
	const char *v;
	size_t n; /* 0: strlen */
	bool ok;  /* what both must say: accepted */
};

static size_t case_len(const struct same_case *c)
{
	return c->n ? c->n : strlen(c->v);
}

/* The same good and bad values through HTTP and the binary protocol:
 * ids, idempotency keys, customer ids and free text; both must accept
 * exactly the same ones (the binary protocol took "01" and keys with NUL
 * or control bytes, and invalid UTF-8 in names). */
static void test_same_inputs(bc_client *svc)
{
	static char big[300], path[512], body[2048], esc[1400];
	char ev_s[32], org_s[32];
	uint64_t ev, org = 0;
	unsigned diff = 0;
	int fd, hs, bc;

	ev = first_event_of(svc, make_series(svc, "Same", 1000, 0, NULL));
	CHECK(bc_org_create(svc, "Same", "UTC", NULL, &org) == BC_OK);
	snprintf(ev_s, sizeof(ev_s), "%" PRIu64, ev);
	snprintf(org_s, sizeof(org_s), "%" PRIu64, org);
	fd = raw_connect();
	CHECK(fd >= 0);
	if (fd < 0 || !http_addr[0])
		return;
	CHECK(raw_hello(fd, SVC) == BC_OK);

	/* Ids: an event's in the path (HTTP) or event_id (binary); an org's
	 * in a location's body. */
	char id0[40], idp[40], ids[40], ide[40];
	snprintf(id0, sizeof(id0), "0%s", ev_s);
	snprintf(idp, sizeof(idp), "+%s", ev_s);
	snprintf(ids, sizeof(ids), "%s ", ev_s);
	snprintf(ide, sizeof(ide), "%se0", ev_s);
	const struct same_case ids_[] = {
		{ ev_s, 0, true },  { id0, 0, false },
		{ idp, 0, false },  { ids, 0, false },
		{ ide, 0, false },  { "0", 0, false },
		{ "00", 0, false }, { "18446744073709551616", 0, false },
		{ "", 0, false },
	};
	for (size_t i = 0; i < sizeof(ids_) / sizeof(ids_[0]); i++) {
		const struct same_case *c = &ids_[i];
		size_t n = case_len(c);
		bool h_ok, b_ok;
		/* the path: as it would be typed, a space percent-encoded */
		snprintf(path, sizeof(path), "/v1/events/%.*s", (int)n, c->v);
		if (n && c->v[n - 1] == ' ')
			snprintf(path, sizeof(path), "/v1/events/%.*s%%20",
				 (int)(n - 1), c->v);
		hs = http_status("GET", path, "", "", 0);
		bc = bin_one(fd, "event.get", "event_id", c->v, n, NULL, NULL,
			     NULL, 0);
		h_ok = hs == 200;
		b_ok = bc == BC_OK;
		if (h_ok != c->ok || b_ok != c->ok) {
			fprintf(stderr, "event id \"%s\": http %d, binary %d\n",
				c->v, hs, bc);
			diff++;
		}
		/* the same value as a body id (location.create's org_id) */
		const char *v = c->v == ev_s ? org_s : c->v;
		char o0[40];
		if (c->v == id0) {
			snprintf(o0, sizeof(o0), "0%s", org_s);
			v = o0;
		}
		n = strlen(v);
		esc[json_str(esc, v, n)] = '\0';
		snprintf(body, sizeof(body), "{\"org_id\":%s,\"name\":\"L\"}",
			 esc);
		hs = http_status("POST", "/v1/locations", "", body,
				 strlen(body));
		bc = bin_one(fd, "location.create", "org_id", v, n, "name", "L",
			     NULL, 0);
		if ((hs == 201) != (bc == BC_OK) || (hs == 201) != c->ok) {
			fprintf(stderr, "org id \"%s\": http %d, binary %d\n",
				v, hs, bc);
			diff++;
		}
	}

	/* Idempotency keys, on a book: HTTP by the service key, the binary
	 * protocol by a customer (keys are scoped by the caller: the same key
	 * from the service key on both would be one key, reused). Accepted:
	 * decided (booked, or already booked), not refused as invalid. */
	int cfd = raw_connect();
	CHECK(cfd >= 0);
	if (cfd < 0)
		return;
	{
		char tok[512];
		make_jwt("same-bk", (long long)time(NULL) + 3600, tok);
		CHECK(raw_hello(cfd, tok) == BC_OK);
	}
	memset(big, 'k', 256);
	const struct same_case keys[] = {
		{ "k-1", 0, true },
		{ "a b", 0, true },
		{ "~!@#", 0, true },
		{ big, 255, true },
		{ big, 256, false },
		{ "a\x01"
		  "b",
		  0, false },
		{ "a\tb", 0, false },
		{ "a\x7f", 0, false },
		{ "\xc3\xa9", 0, false },
		{ "a\0b", 3, false },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct same_case *c = &keys[i];
		size_t n = case_len(c);
		char hdr[400], cust[32];
		snprintf(cust, sizeof(cust), "same-h-%zu", i);
		snprintf(body, sizeof(body), "{\"customer_id\":\"%s\"}", cust);
		snprintf(path, sizeof(path), "/v1/events/%s/bookings", ev_s);
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %.*s\r\n", (int)n,
			 c->v);
		/* a NUL cannot be in a header line: HTTP sees the cut key,
		 * which the parser refuses as a malformed header anyway */
		hs = memchr(c->v, 0, n) ? 400
					: http_status("POST", path, hdr, body,
						      strlen(body));
		snprintf(cust, sizeof(cust), "same-bk");
		bc = bin_one(cfd, "book", "key", c->v, n, "customer_id", cust,
			     "event_id", ev);
		if ((hs == 201) != c->ok ||
		    (bc == BC_OK || bc == BC_ALREADY_BOOKED) != c->ok) {
			fprintf(stderr,
				"key %zu (%zu bytes): http %d, binary %d\n", i,
				n, hs, bc);
			diff++;
		}
	}

	/* Customer ids and free text (an org's name). */
	memset(big, 'c', 65);
	const struct same_case custs[] = {
		{ "c-1", 0, true },  { "a.b_c:d@e-f", 0, true },
		{ big, 64, true },   { big, 65, false },
		{ "a b", 0, false }, { "\xc3\xa9", 0, false },
		{ "", 0, false },    { "a\0b", 3, false },
	};
	for (size_t i = 0; i < sizeof(custs) / sizeof(custs[0]); i++) {
		const struct same_case *c = &custs[i];
		size_t n = case_len(c);
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: cu-h-%zu\r\n", i);
		esc[json_str(esc, c->v, n)] = '\0';
		snprintf(body, sizeof(body), "{\"customer_id\":%s}", esc);
		snprintf(path, sizeof(path), "/v1/events/%s/bookings", ev_s);
		hs = http_status("POST", path, hdr, body, strlen(body));
		snprintf(hdr, sizeof(hdr), "cu-b-%zu", i);
		bc = bin_one(fd, "book", "customer_id", c->v, n, "key", hdr,
			     "event_id", ev);
		/* the same customer as HTTP's: already booked, yet decided */
		if ((hs == 201) != c->ok ||
		    (bc == BC_OK || bc == BC_ALREADY_BOOKED) != c->ok) {
			fprintf(stderr, "customer %zu: http %d, binary %d\n", i,
				hs, bc);
			diff++;
		}
	}
	const struct same_case texts[] = {
		{ "Studio", 0, true },
		{ "caf\xc3\xa9", 0, true },
		{ "a\x01"
		  "b",
		  0, true },
		{ "\xf0\x9f\x98\x80", 0, true },
		{ "\xff", 0, false },
		{ "\xc3", 0, false },
		{ "\xc0\x80", 0, false },
		{ "\xed\xa0\x80", 0, false },
		{ "\xf4\x90\x80\x80", 0, false },
		{ "a\0b", 3, false },
		{ "", 0, false },
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const struct same_case *c = &texts[i];
		size_t n = case_len(c);
		esc[json_str(esc, c->v, n)] = '\0';
		snprintf(body, sizeof(body),
			 "{\"name\":%s,\"timezone\":\"UTC\"}", esc);
		hs = http_status("POST", "/v1/orgs", "", body, strlen(body));
		bc = bin_one(fd, "org.create", "name", c->v, n, "timezone",
			     "UTC", NULL, 0);
		if ((hs == 201) != c->ok || (bc == BC_OK) != c->ok) {
			fprintf(stderr, "name %zu: http %d, binary %d\n", i, hs,
				bc);
			diff++;
		}
	}
	printf("same inputs: %u differences\n", diff);
	CHECK(diff == 0);
	close(cfd);
	close(fd);
}

static void run(bc_client **c)
{
	make_catalogue(*c);
	test_same_inputs(*c);
}

int main(void) { return bin_e2e_main("bin_e2e_same", run, NULL); }
