/*
 * test_auth_walk.c: the auth walk (issue 19): every HTTP route of the
 * operation table (api/ops.c, read here with ops_get: a route added to the
 * table is walked without a change here) called on a running bookd by each
 * of these callers, and each answer checked against the row's access rule:
 *
 *   caller                 none      public     customer        service
 *   no Authorization       allowed   401        401             401
 *   the anon key           allowed   allowed    403             403
 *   another customer's JWT allowed   allowed*   403/404*        403
 *   an expired JWT         allowed   401        401             401
 *   a JWT, wrong signature allowed   401        401             401
 *   the owner's JWT        allowed   allowed    allowed         403
 *   the service key        allowed   allowed    allowed         allowed
 *
 * "allowed": past authentication and authorisation, whatever the request
 * then comes to (200, 201, 400, 404, 409...), never 401 or 403 (nor 429:
 * the limits are raised so that none is reached). *: a request that names
 * the owner's resources (the owner's customer id or booking in the path,
 * or a body booking or cancelling for the owner) is refused to another
 * customer whatever the rule (403, or 404 for another's booking, as
 * docs/http.md has it), never answered 2xx. Each route's path gets the
 * owner's real ids (an org, location, instructor, series, event, booking
 * made first with the service key), each POST and PATCH the body below for
 * its operation ({} when none is listed).
 *
 * The binary protocol the same way: the hello refuses no key, a bad
 * signature (unauthorized) and an expired JWT (token_expired); on a
 * connection of each other caller every row with a binary op is sent
 * (with the owner's event, booking and customer ids as its fields) and
 * its answer checked against the same table: allowed is any code but
 * unauthorized, forbidden and rate_limited; refused is forbidden (or
 * not_found for another's booking).
 *
 * bookd runs with every secret set from its environment (service and anon
 * keys, JWT secret, Stripe webhook secret, Stripe secret key, notification
 * webhook secret with a sink that refuses connections), logging at debug
 * and every request slower than 1 ms;
 * after the walk its log holds none of those values nor any token used
 * (and the log is kept for tests/integration/logs_secrets.sh with
 * BOOKD_TEST_LOG_DIR, which ctest sets).
 *
 * Exit 77 (skipped) when bookd is not built.
 */
#include "bookd_test.h"
#include "check.h"
#include "jwt_test.h"
#include "ops.h"
#include "proto.h"

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#define OWNER "cus_owner"
#define OTHER "cus_other"

enum caller {
	C_NONE,
	C_ANON,
	C_OTHER,
	C_EXPIRED,
	C_BAD_SIG,
	C_OWNER,
	C_SERVICE,
	C_COUNT
};

static const char *const caller_names[C_COUNT] = {
	"no key",      "anon key",	  "another customer's JWT",
	"expired JWT", "wrong signature", "the owner's JWT",
	"service key",
};

static char g_http[64], g_log[512];
static char g_svc[64], g_anon[64], g_jwt_secret[64], g_whsec[64],
	g_stripe_key[64], g_notify_secret[80];
static char g_tokens[C_COUNT][512];
static char g_ids[8][32]; /* org, location, instructor, series, event,
			   * booking: see id_for */
static unsigned g_seq;

/* One request; its status (-1: none) and the answer in ans. */
static int call(const char *method, const char *path, const char *token,
		const char *body, char *ans, size_t ans_size)
{
	char req[4096];
	int n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: walk\r\nConnection: close\r\n"
		     "%s%s%s"
		     "Idempotency-Key: walk-%u\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, path, token ? "Authorization: Bearer " : "",
		     token ? token : "", token ? "\r\n" : "", ++g_seq,
		     body ? strlen(body) : 0, body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	return bookd_test_http(g_http, req, (size_t)n, ans, ans_size);
}

/* A string field of the answer's JSON body at a.b (b may be NULL). */
static bool field(const char *ans, const char *a, const char *b, char *out,
		  size_t size)
{
	const char *body = strstr(ans, "\r\n\r\n");
	json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
	json_t *v = json_object_get(j, a);
	bool ok;

	if (b)
		v = json_object_get(v, b);
	ok = json_is_string(v) && strlen(json_string_value(v)) < size;
	if (ok)
		snprintf(out, size, "%s", json_string_value(v));
	json_decref(j);
	return ok;
}

enum { ID_ORG, ID_LOCATION, ID_INSTRUCTOR, ID_SERIES, ID_EVENT, ID_BOOKING };

/* The owner's world, made with the service key. */
static bool make_world(void)
{
	static char ans[65536];
	char body[1024], path[128], first[16];
	time_t day = time(NULL) + 2 * 86400;
	struct tm tm;

	gmtime_r(&day, &tm);
	strftime(first, sizeof(first), "%Y-%m-%d", &tm);
	if (call("POST", "/v1/orgs", g_svc,
		 "{\"name\":\"Walk\",\"timezone\":\"UTC\"}", ans,
		 sizeof(ans)) != 201 ||
	    !field(ans, "org", "id", g_ids[ID_ORG], sizeof(g_ids[0])))
		return false;
	snprintf(body, sizeof(body), "{\"org_id\":\"%s\",\"name\":\"Hall\"}",
		 g_ids[ID_ORG]);
	if (call("POST", "/v1/locations", g_svc, body, ans, sizeof(ans)) !=
		    201 ||
	    !field(ans, "location", "id", g_ids[ID_LOCATION], sizeof(g_ids[0])))
		return false;
	if (call("POST", "/v1/instructors", g_svc, body, ans, sizeof(ans)) !=
		    201 ||
	    !field(ans, "instructor", "id", g_ids[ID_INSTRUCTOR],
		   sizeof(g_ids[0])))
		return false;
	snprintf(body, sizeof(body),
		 "{\"id\":\"%s\",\"email\":\"owner@example.com\","
		 "\"name\":\"Owner\"}",
		 OWNER);
	if (call("POST", "/v1/customers", g_svc, body, ans, sizeof(ans)) != 201)
		return false;
	snprintf(body, sizeof(body),
		 "{\"org_id\":\"%s\",\"location_id\":\"%s\","
		 "\"instructor_id\":\"%s\",\"title\":\"Walk\",\"capacity\":50,"
		 "\"waitlist_capacity\":5,\"timezone\":\"UTC\","
		 "\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\","
		 "\"SU\"],\"start_time\":\"10:00\",\"duration_min\":60,"
		 "\"first_date\":\"%s\",\"last_date\":\"%s\"}",
		 g_ids[ID_ORG], g_ids[ID_LOCATION], g_ids[ID_INSTRUCTOR], first,
		 first);
	if (call("POST", "/v1/series", g_svc, body, ans, sizeof(ans)) != 201 ||
	    !field(ans, "series", "id", g_ids[ID_SERIES], sizeof(g_ids[0])))
		return false;
	snprintf(path, sizeof(path), "/v1/events?org_id=%s&limit=1",
		 g_ids[ID_ORG]);
	if (call("GET", path, g_svc, NULL, ans, sizeof(ans)) != 200)
		return false;
	{
		const char *b = strstr(ans, "\r\n\r\n");
		json_t *j = b ? json_loads(b + 4, 0, NULL) : NULL;
		json_t *id =
			json_object_get(json_array_get(json_object_get(j,
								       "events"),
						       0),
					"id");
		bool ok = json_is_string(id);

		if (ok)
			snprintf(g_ids[ID_EVENT], sizeof(g_ids[0]), "%s",
				 json_string_value(id));
		json_decref(j);
		if (!ok)
			return false;
	}
	snprintf(path, sizeof(path), "/v1/events/%s/bookings", g_ids[ID_EVENT]);
	return call("POST", path, g_svc, "{\"customer_id\":\"" OWNER "\"}", ans,
		    sizeof(ans)) == 201 &&
	       field(ans, "booking", "id", g_ids[ID_BOOKING], sizeof(g_ids[0]));
}

/* The path of a row with the owner's ids in its {} segment. */
static void path_for(const struct op_def *op, char *out, size_t size)
{
	static const struct {
		const char *seg, *value;
	} segs[] = {
		{ "{org_id}", g_ids[ID_ORG] },
		{ "{location_id}", g_ids[ID_LOCATION] },
		{ "{instructor_id}", g_ids[ID_INSTRUCTOR] },
		{ "{series_id}", g_ids[ID_SERIES] },
		{ "{event_id}", g_ids[ID_EVENT] },
		{ "{booking_id}", g_ids[ID_BOOKING] },
		{ "{customer_id}", OWNER },
	};
	const char *open = strchr(op->path, '{'), *close;
	const char *value = NULL;

	if (!open) {
		snprintf(out, size, "%s", op->path);
		return;
	}
	close = strchr(open, '}');
	for (size_t i = 0; i < CHECK_COUNT_OF(segs); i++)
		if (strlen(segs[i].seg) == (size_t)(close + 1 - open) &&
		    !strncmp(open, segs[i].seg, (size_t)(close + 1 - open)))
			value = segs[i].value;
	CHECK_MSG(value, "%s: no id known for its path segment in %s", op->name,
		  op->path);
	snprintf(out, size, "%.*s%s%s", (int)(open - op->path), op->path,
		 value ? value : "1", close + 1);
}

/* The body of a POST or PATCH: for the owner where the operation names a
 * customer or a booking. */
static void body_for(const struct op_def *op, char *out, size_t size)
{
	if (!strcmp(op->name, "book"))
		snprintf(out, size, "{\"customer_id\":\"%s\"}", OWNER);
	else if (!strcmp(op->name, "compat.book"))
		snprintf(out, size,
			 "{\"eventId\":\"%s\",\"customerId\":\"%s\"}",
			 g_ids[ID_EVENT], OWNER);
	else if (!strcmp(op->name, "compat.cancel"))
		snprintf(out, size,
			 "{\"registrationId\":\"%s\",\"customerId\":\"%s\"}",
			 g_ids[ID_BOOKING], OWNER);
	else
		snprintf(out, size, "{}");
}

/* Whether the request names the owner's resources (table above: *). */
static bool names_owner(const struct op_def *op)
{
	return (op->path && (strstr(op->path, "{customer_id}") ||
			     strstr(op->path, "{booking_id}"))) ||
	       !strcmp(op->name, "book") || !strcmp(op->name, "book.batch") ||
	       !strcmp(op->name, "compat.book") ||
	       !strcmp(op->name, "compat.cancel");
}

/* 0: allowed, 401, 403, or 1: refused to another customer (403 or 404). */
static int expected(const struct op_def *op, enum caller c)
{
	enum op_access a = op->access;

	if (a == OP_ACCESS_NONE || c == C_SERVICE)
		return 0;
	switch (c) {
	case C_NONE:
	case C_EXPIRED:
	case C_BAD_SIG: return 401;
	case C_ANON: return a == OP_ACCESS_PUBLIC ? 0 : 403;
	case C_OTHER:
		if (a == OP_ACCESS_SERVICE)
			return 403;
		return names_owner(op) ? 1 : 0;
	case C_OWNER: return a == OP_ACCESS_SERVICE ? 403 : 0;
	default: return -1;
	}
}

static void walk(void)
{
	static char ans[1 << 20];
	static const struct {
		enum op_method bit;
		const char *name;
	} methods[] = { { OP_GET, "GET" },
			{ OP_POST, "POST" },
			{ OP_PATCH, "PATCH" } };
	unsigned routes = 0, calls = 0;

	for (int c = 0; c < C_COUNT; c++) {
		for (int i = OP_NONE + 1; i < OP_COUNT; i++) {
			const struct op_def *op = ops_get((enum op_id)i);
			char path[256], body[512];

			if (!op || !op->path)
				continue;
			routes += c == 0;
			path_for(op, path, sizeof(path));
			body_for(op, body, sizeof(body));
			for (size_t m = 0; m < CHECK_COUNT_OF(methods); m++) {
				int want = expected(op, (enum caller)c), got;
				bool pass;

				if (!(op->method & methods[m].bit))
					continue;
				got = call(methods[m].name, path,
					   c == C_NONE ? NULL : g_tokens[c],
					   methods[m].bit == OP_GET ? NULL
								    : body,
					   ans, sizeof(ans));
				calls++;
				if (want == 0)
					pass = got >= 200 && got < 600 &&
					       got != 401 && got != 403 &&
					       got != 429;
				else if (want == 1)
					pass = got == 403 || got == 404;
				else
					pass = got == want;
				CHECK_MSG(pass,
					  "%s %s (%s, access %s) by %s: %d, "
					  "wanted %s%s: %.300s",
					  methods[m].name, path, op->name,
					  ops_access_name(op->access),
					  caller_names[c], got,
					  want == 0   ? "allowed"
					  : want == 1 ? "403 or 404"
						      : "",
					  want > 1 ? (want == 401 ? "401"
								  : "403")
						   : "",
					  ans);
				/* an expired token is told so */
				if (c == C_EXPIRED && want == 401)
					CHECK(strstr(ans, "token_expired"));
			}
		}
	}
	printf("auth walk: %u routes, %d callers, %u calls\n", routes, C_COUNT,
	       calls);
	CHECK(routes > 30 && calls >= routes * C_COUNT);
}

/* ---- the binary protocol ---- */

static char g_bin[64];

/* Reads one answer frame on fd (5 s): its "code" into code ("" when the
 * connection closed first, "?" when unreadable). */
static void bin_read(int fd, char *code, size_t size)
{
	static uint8_t buf[1 << 16];
	size_t have = 0;

	code[0] = '\0';
	for (;;) {
		long f = mp_frame_size(buf, have);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (f > 0 && (size_t)f <= sizeof(buf)) {
			msgpack_zone z;
			msgpack_object o;

			msgpack_zone_init(&z, 4096);
			if (mp_decode(&z, buf + 4, (size_t)f - 4, &o) != 0 ||
			    mp_get_str_copy(&o, "code", code, size) != 0)
				snprintf(code, size, "?");
			msgpack_zone_destroy(&z);
			return;
		}
		if (poll(&p, 1, 5000) <= 0)
			return;
		k = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (k <= 0)
			return;
		have += (size_t)k;
	}
}

static bool bin_send(int fd, struct buf *b)
{
	size_t sent = 0;

	while (sent < b->size) {
		ssize_t k =
			send(fd, b->data + sent, b->size - sent, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		sent += (size_t)k;
	}
	return true;
}

/* A new connection's hello as caller c: its answer's code. */
static int bin_hello(enum caller c, char *code, size_t size)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	size_t start;
	int fd = bookd_test_connect(g_bin);

	code[0] = '\0';
	if (fd < 0)
		return -1;
	msgpack_packer_init(&pk, &b, mp_buf_write);
	start = mp_frame_begin(&pk, b.size);
	msgpack_pack_map(&pk, c == C_NONE ? 1 : 2);
	mp_pack_kv_uint(&pk, "v", 1);
	if (c != C_NONE)
		mp_pack_kv_str(&pk, "auth", g_tokens[c]);
	mp_frame_end(b.data, start, b.size);
	if (bin_send(fd, &b))
		bin_read(fd, code, size);
	buf_free(&b);
	return fd;
}

/* A request for op on fd, with the owner's ids as its fields (those it
 * does not read are refused as unknown or ignored: the access rule is
 * checked first). */
static void bin_request(int fd, const struct op_def *op, char *code,
			size_t size)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	size_t start;
	char key[32];
	bool batch = op->bin == MP_OP_BOOK_BATCH;

	snprintf(key, sizeof(key), "walk-bin-%u", ++g_seq);
	msgpack_packer_init(&pk, &b, mp_buf_write);
	start = mp_frame_begin(&pk, b.size);
	msgpack_pack_map(&pk, batch ? 3 : 6);
	mp_pack_kv_uint(&pk, "id", g_seq);
	mp_pack_kv_str(&pk, "op", op->name);
	if (batch) {
		mp_pack_str(&pk, "items");
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 3);
		mp_pack_kv_uint(&pk, "event_id",
				strtoull(g_ids[ID_EVENT], NULL, 10));
		mp_pack_kv_str(&pk, "customer_id", OWNER);
		mp_pack_kv_str(&pk, "key", key);
	} else {
		mp_pack_kv_str(&pk, "key", key);
		mp_pack_kv_uint(&pk, "event_id",
				strtoull(g_ids[ID_EVENT], NULL, 10));
		mp_pack_kv_uint(&pk, "booking_id",
				strtoull(g_ids[ID_BOOKING], NULL, 10));
		mp_pack_kv_str(&pk, "customer_id", OWNER);
	}
	mp_frame_end(b.data, start, b.size);
	code[0] = '\0';
	if (bin_send(fd, &b))
		bin_read(fd, code, size);
	buf_free(&b);
}

/* The binary protocol's walk: every row with a binary op, by each caller
 * (the hello refuses no key, an expired JWT and a bad signature at once:
 * then every request on such a connection is unanswered). */
static void bin_walk(void)
{
	static const char *const hello_want[C_COUNT] = {
		[C_NONE] = "unauthorized",
		[C_ANON] = "ok",
		[C_OTHER] = "ok",
		[C_EXPIRED] = "token_expired",
		[C_BAD_SIG] = "unauthorized",
		[C_OWNER] = "ok",
		[C_SERVICE] = "ok",
	};
	unsigned ops = 0, calls = 0;

	for (int c = 0; c < C_COUNT; c++) {
		char code[64];
		int fd = bin_hello((enum caller)c, code, sizeof(code));

		CHECK_MSG(!strcmp(code, hello_want[c]),
			  "binary hello by %s: \"%s\", wanted \"%s\"",
			  caller_names[c], code, hello_want[c]);
		if (fd >= 0)
			close(fd);
		if (strcmp(hello_want[c], "ok") != 0)
			continue;
		for (int i = OP_NONE + 1; i < OP_COUNT; i++) {
			const struct op_def *op = ops_get((enum op_id)i);
			int want;
			bool pass;

			if (!op || op->bin == MP_OP_NONE)
				continue;
			ops += c == C_ANON;
			want = expected(op, (enum caller)c);
			fd = bin_hello((enum caller)c, code, sizeof(code));
			bin_request(fd, op, code, sizeof(code));
			if (fd >= 0)
				close(fd);
			calls++;
			if (want == 0)
				pass = code[0] && strcmp(code, "?") &&
				       strcmp(code, "unauthorized") &&
				       strcmp(code, "forbidden") &&
				       strcmp(code, "rate_limited");
			else if (want == 1)
				pass = !strcmp(code, "forbidden") ||
				       !strcmp(code, "not_found");
			else
				pass = !strcmp(code, "forbidden");
			CHECK_MSG(pass,
				  "binary %s (access %s) by %s: \"%s\", "
				  "wanted %s",
				  op->name, ops_access_name(op->access),
				  caller_names[c], code,
				  want == 0   ? "allowed"
				  : want == 1 ? "forbidden or not_found"
					      : "forbidden");
		}
	}
	printf("auth walk (binary): %u operations, %u calls after a hello\n",
	       ops, calls);
	CHECK(ops > 10);
}

/* No secret's value, nor any token used, in the log. */
static void check_log(void)
{
	static char buf[1 << 22];
	const char *secrets[] = { g_svc,
				  g_anon,
				  g_jwt_secret,
				  g_whsec,
				  g_stripe_key,
				  g_notify_secret,
				  g_tokens[C_OTHER],
				  g_tokens[C_EXPIRED],
				  g_tokens[C_BAD_SIG],
				  g_tokens[C_OWNER] };
	FILE *f = fopen(g_log, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	CHECK(n > 0);
	for (size_t i = 0; i < CHECK_COUNT_OF(secrets); i++)
		CHECK_MSG(!strstr(buf, secrets[i]),
			  "secret %zu (%zu bytes) is in bookd's log %s", i,
			  strlen(secrets[i]), g_log);
	/* nor the JWT secret's, tokens' usual shapes */
	CHECK(!strstr(buf, "eyJ"));
	CHECK(!strstr(buf, "Bearer "));
}

/* The log copied to $BOOKD_TEST_LOG_DIR/test_auth_walk/ for
 * logs_secrets.sh (tests/CMakeLists.txt). */
static void keep_log(void)
{
	const char *dir = getenv("BOOKD_TEST_LOG_DIR");
	char path[1024], buf[65536];
	FILE *in, *out;
	size_t n;

	if (!dir || !*dir)
		return;
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/test_auth_walk", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/test_auth_walk/bookd.log", dir);
	in = fopen(g_log, "r");
	out = fopen(path, "w");
	while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
}

int main(void)
{
	char bin[4096], dir[] = "/tmp/test_auth_walk.XXXXXX", data[256];
	char claims[256], cmd[512];
	unsigned starts = 0, r;
	long long now = (long long)time(NULL);
	pid_t pid;
	int st;

	if (!bookd_test_find(bin, sizeof(bin))) {
		printf("test_auth_walk: bookd not built, skipped\n");
		return 77;
	}
	if (!mkdtemp(dir))
		return 1;
	srand((unsigned)now ^ (unsigned)getpid());
	r = (unsigned)rand() % 900000 + 100000;
	snprintf(g_svc, sizeof(g_svc), "svc-%u%u", r, (unsigned)rand() % 1000);
	snprintf(g_anon, sizeof(g_anon), "anon-%u%u", r,
		 (unsigned)rand() % 1000);
	snprintf(g_jwt_secret, sizeof(g_jwt_secret), "jwt-%u%u", r,
		 (unsigned)rand() % 1000);
	snprintf(g_whsec, sizeof(g_whsec), "whsec_walk%u%u", r,
		 (unsigned)rand() % 1000);
	snprintf(g_stripe_key, sizeof(g_stripe_key), "sk_test_walk%u%u", r,
		 (unsigned)rand() % 1000);
	/* whsec_ and base64 of "walk-notify-<r>" */
	{
		char raw[64];
		unsigned k;

		snprintf(raw, sizeof(raw), "walk-notify-%u", r);
		snprintf(g_notify_secret, sizeof(g_notify_secret), "whsec_");
		k = (unsigned)strlen(g_notify_secret);
		EVP_EncodeBlock((uint8_t *)g_notify_secret + k,
				(const uint8_t *)raw, (int)strlen(raw));
	}
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(g_log, sizeof(g_log), "%s/bookd.log", dir);

	snprintf(g_tokens[C_ANON], sizeof(g_tokens[0]), "%s", g_anon);
	snprintf(g_tokens[C_SERVICE], sizeof(g_tokens[0]), "%s", g_svc);
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", OTHER,
		 now + 3600);
	jwt_sign(JWT_HS256_HEADER, claims, g_jwt_secret, EVP_sha256(),
		 g_tokens[C_OTHER]);
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", OWNER,
		 now - 3600);
	jwt_sign(JWT_HS256_HEADER, claims, g_jwt_secret, EVP_sha256(),
		 g_tokens[C_EXPIRED]);
	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", OWNER,
		 now + 3600);
	jwt_sign(JWT_HS256_HEADER, claims, "jwt-not-the-secret", EVP_sha256(),
		 g_tokens[C_BAD_SIG]);
	jwt_sign(JWT_HS256_HEADER, claims, g_jwt_secret, EVP_sha256(),
		 g_tokens[C_OWNER]);

	setenv("BOOKD_SERVICE_KEY", g_svc, 1);
	setenv("BOOKD_ANON_KEY", g_anon, 1);
	setenv("BOOKD_JWT_SECRET", g_jwt_secret, 1);
	setenv("STRIPE_WEBHOOK_SECRET", g_whsec, 1);
	setenv("STRIPE_SECRET_KEY", g_stripe_key, 1);
	setenv("STRIPE_API_BASE", "http://127.0.0.1:9", 1);
	setenv("NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/hook", 1);
	setenv("NOTIFY_WEBHOOK_SECRET", g_notify_secret, 1);
	setenv("BOOKD_LOG_LEVEL", "debug", 1);
	setenv("BOOKD_ADDRESS_RATE", "100000", 1);
	setenv("BOOKD_CUSTOMER_RATE", "100000", 1);
	setenv("BOOKD_SLOW_REQUEST_MS", "1", 1); /* requests logged */
	{
		char *argv[] = { "bookd",	"--data-dir",
				 data,		"--listen",
				 "127.0.0.1:0", "--binary-listen",
				 "127.0.0.1:0", NULL };

		pid = bookd_test_spawn(bin, argv, g_log, false);
	}
	if (pid < 0 ||
	    bookd_test_wait(pid, g_log, 600, &starts, g_bin, sizeof(g_bin),
			    g_http, sizeof(g_http)) != 0) {
		fprintf(stderr, "test_auth_walk: bookd did not start\n");
		return 1;
	}
	if (make_world()) {
		walk();
		bin_walk();
	} else
		CHECK_MSG(false, "the owner's org, series, event and booking "
				 "could not be made");
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	check_log();
	keep_log();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_auth_walk: %s failed\n", cmd);
	printf("auth_walk: %u checks (%u failed)\n", check_count,
	       check_fail_count);
	return check_fail_count ? 1 : 0;
}
