/*
 * test_docs_bin.c: the binary protocol's examples in docs/protocol.md, run.
 *
 * Every fenced block opened by "```msgpack example send", "... recv" or
 * "... send raw" is an example: a line with the frame's body as JSON (not
 * for raw), then the frame's bytes in hex, length prefix first. Checked:
 *   - the bytes are one frame whose length prefix is right, and its body
 *     decodes to exactly the JSON shown (so the two cannot drift);
 *   - against a live bookd (BOOKD_BIN, else ../api/bookd beside this test's
 *     directory; a temp data dir, service key "svc-key" as in the hello
 *     example), in document order on one connection: each send is written
 *     as is, each recv is read as the next frame and must equal the one
 *     shown, but for values that differ from run to run (times, counts of
 *     generated events: EXAMPLE_VOLATILE), which must have the same type;
 *     a frame without such values must be the same bytes;
 *     a send raw's answer may be followed by the close.
 * A doc with no example, an unreadable block or a failed check fails.
 * DOCS_PRINT=1 prints what bookd answered, in the doc's form.
 */
#include "bookd_test.h"
#include "check.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SKIP 77
#define EXAMPLE_COUNT_MAX 64
#define EXAMPLE_SIZE_MAX 4096

static const char *const EXAMPLE_VOLATILE[] = { "created_at", "hold_expires_at",
						"start_at",   "generated",
						"started_at", NULL };

enum kind { SEND, SEND_RAW, RECV };

struct example {
	enum kind kind;
	unsigned line; /* in the doc */
	json_t *json;  /* NULL for raw */
	uint8_t bytes[EXAMPLE_SIZE_MAX];
	size_t size;
};

static struct example ex[EXAMPLE_COUNT_MAX];
static unsigned ex_count;
static char doc_path[4096];

/* ---- reading the doc ---- */

static int hex_line(const char *s, struct example *e)
{
	while (*s) {
		unsigned v;
		int used;
		if (*s == ' ' || *s == '\n') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x%n", &v, &used) != 1 || used != 2 ||
		    e->size == sizeof(e->bytes))
			return -EINVAL;
		e->bytes[e->size++] = (uint8_t)v;
		s += 2;
	}
	return 0;
}

static int read_doc(void)
{
	FILE *f = fopen(doc_path, "r");
	char line[4096];
	unsigned n = 0;
	struct example *e = NULL;

	if (!f) {
		fprintf(stderr, "docs: %s: %s\n", doc_path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (!e) {
			if (strncmp(line, "```msgpack example ", 19) != 0)
				continue;
			if (ex_count == EXAMPLE_COUNT_MAX) {
				fprintf(stderr, "docs: too many examples\n");
				return -E2BIG;
			}
			e = &ex[ex_count++];
			e->line = n;
			if (!strcmp(line + 19, "send\n"))
				e->kind = SEND;
			else if (!strcmp(line + 19, "send raw\n"))
				e->kind = SEND_RAW;
			else if (!strcmp(line + 19, "recv\n"))
				e->kind = RECV;
			else {
				fprintf(stderr,
					"docs: line %u: unknown example "
					"kind: %s",
					n, line);
				return -EINVAL;
			}
			continue;
		}
		if (!strncmp(line, "```", 3)) {
			if (e->size == 0 || (e->kind != SEND_RAW && !e->json)) {
				fprintf(stderr,
					"docs: line %u: an example needs "
					"its JSON and its bytes\n",
					e->line);
				return -EINVAL;
			}
			e = NULL;
			continue;
		}
		if (line[0] == '{') {
			json_error_t je;
			if (e->json || e->kind == SEND_RAW ||
			    !(e->json = json_loads(line, 0, &je))) {
				fprintf(stderr, "docs: line %u: bad JSON: %s\n",
					n, e->json ? "twice" : je.text);
				return -EINVAL;
			}
			continue;
		}
		if (hex_line(line, e)) {
			fprintf(stderr, "docs: line %u: not hex bytes: %s", n,
				line);
			return -EINVAL;
		}
	}
	fclose(f);
	if (e) {
		fprintf(stderr, "docs: line %u: example not closed\n", e->line);
		return -EINVAL;
	}
	return 0;
}

/* ---- msgpack to JSON, and comparing ---- */

static json_t *to_json(const msgpack_object *o)
{
	json_t *j;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return json_null();
	case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			json_t *v = to_json(&o->via.array.ptr[i]);
			if (!v) {
				json_decref(j);
				return NULL;
			}
			json_array_append_new(j, v);
		}
		return j;
	case MSGPACK_OBJECT_MAP:
		j = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char key[256];
			json_t *v;
			if (kv->key.type != MSGPACK_OBJECT_STR ||
			    kv->key.via.str.size >= sizeof(key) ||
			    !(v = to_json(&kv->val))) {
				json_decref(j);
				return NULL;
			}
			memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
			key[kv->key.via.str.size] = '\0';
			json_object_set_new(j, key, v);
		}
		return j;
	default: return NULL;
	}
}

/* The frame at p[0..n) as JSON (NULL: not exactly one well-formed frame). */
static json_t *frame_json(const uint8_t *p, size_t n)
{
	msgpack_zone zone;
	msgpack_object o;
	json_t *j = NULL;

	if (n < MP_HEADER_SIZE || mp_frame_size(p, n) != (long)n)
		return NULL;
	msgpack_zone_init(&zone, 4096);
	if (mp_decode(&zone, p + MP_HEADER_SIZE, n - MP_HEADER_SIZE, &o) == 0)
		j = to_json(&o);
	msgpack_zone_destroy(&zone);
	return j;
}

static bool is_volatile(const char *key)
{
	for (int i = 0; EXAMPLE_VOLATILE[i]; i++)
		if (!strcmp(key, EXAMPLE_VOLATILE[i]))
			return true;
	return false;
}

/* doc and got equal but for the volatile keys' values (same type). */
static bool same(const json_t *doc, const json_t *got)
{
	const char *key;
	json_t *v;

	if (json_typeof(doc) != json_typeof(got))
		return false;
	if (json_is_object(doc)) {
		if (json_object_size(doc) != json_object_size(got))
			return false;
		json_object_foreach((json_t *)doc, key, v)
		{
			json_t *g = json_object_get(got, key);
			if (!g)
				return false;
			if (is_volatile(key) ? json_typeof(v) != json_typeof(g)
					     : !same(v, g))
				return false;
		}
		return true;
	}
	if (json_is_array(doc)) {
		if (json_array_size(doc) != json_array_size(got))
			return false;
		for (size_t i = 0; i < json_array_size(doc); i++)
			if (!same(json_array_get(doc, i),
				  json_array_get(got, i)))
				return false;
		return true;
	}
	return json_equal((json_t *)doc, (json_t *)got);
}

static bool has_volatile(const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, key,
				    v) if (is_volatile(key) ||
					   has_volatile(v)) return true;
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) if (has_volatile(v)) return true;
	}
	return false;
}

static void print_frame(const char *what, const uint8_t *p, size_t n)
{
	json_t *j = frame_json(p, n);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	fprintf(stderr, "%s: %s\n", what, s ? s : "(not a frame)");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x%s", p[i],
			i + 1 == n || i % 32 == 31 ? "\n" : " ");
	free(s);
	json_decref(j);
}

/* ---- the doc on its own ---- */

static void test_self_consistent(void)
{
	CHECK(ex_count > 0);
	for (unsigned i = 0; i < ex_count; i++) {
		const struct example *e = &ex[i];
		json_t *j;
		if (e->kind == SEND_RAW) {
			CHECK(e->size >= MP_HEADER_SIZE);
			continue;
		}
		j = frame_json(e->bytes, e->size);
		CHECK(j != NULL);
		CHECK(j && json_equal(j, e->json));
		if (!j || !json_equal(j, e->json)) {
			fprintf(stderr,
				"docs: line %u: the bytes are not the JSON\n",
				e->line);
			print_frame("the bytes say", e->bytes, e->size);
		}
		json_decref(j);
	}
}

/* ---- against bookd ---- */

static char bookd_bin[4096], data_dir[256], log_path[300], addr[128];
static pid_t bookd_pid;

static bool find_bookd(void)
{
	return bookd_test_find(bookd_bin, sizeof(bookd_bin));
}

/* Starts bookd with a fresh log and waits up to 20 s for where it listens. */
static int start_bookd(void)
{
	char *argv[] = { "bookd",	"--data-dir",	 data_dir,
			 "--listen",	"127.0.0.1:0",	 "--binary-listen",
			 "127.0.0.1:0", "--service-key", "svc-key",
			 "--anon-key",	"anon-key",	 NULL };
	unsigned starts = 0;
	int rc;

	pid_t pid = bookd_test_spawn(bookd_bin, argv, log_path, false);

	if (pid < 0)
		return pid;
	bookd_pid = pid;
	rc = bookd_test_wait(bookd_pid, log_path, 400, &starts, addr,
			     sizeof(addr), NULL, 0);
	if (rc == -ECHILD)
		bookd_pid = 0;
	return rc;
}

static int connect_bookd(void)
{
	char host[128];
	char *colon;
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int fd;

	snprintf(host, sizeof(host), "%s", addr);
	colon = strrchr(host, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Reads n bytes within 5 s: 0, or -1 (closed, error, timeout). */
static int read_n(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;
		if (poll(&pf, 1, 5000) <= 0)
			return -1;
		r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void test_live(void)
{
	static uint8_t buf[1 << 16];
	bool print = getenv("DOCS_PRINT") != NULL;
	int fd = connect_bookd();

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < ex_count; i++) {
		const struct example *e = &ex[i];
		if (e->kind != RECV) {
			size_t off = 0;
			while (off < e->size) {
				ssize_t w = write(fd, e->bytes + off,
						  e->size - off);
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			CHECK(off == e->size);
			continue;
		}
		size_t body;
		json_t *got = NULL;
		int rc = read_n(fd, buf, MP_HEADER_SIZE);
		body = rc ? 0 : mp_be32_get(buf);
		if (rc == 0 && body <= sizeof(buf) - MP_HEADER_SIZE)
			rc = read_n(fd, buf + MP_HEADER_SIZE, body);
		else
			rc = -1;
		if (rc == 0)
			got = frame_json(buf, MP_HEADER_SIZE + body);
		/* the same bytes too, when nothing in it varies */
		bool exact = has_volatile(e->json) ||
			     (MP_HEADER_SIZE + body == e->size &&
			      !memcmp(buf, e->bytes, e->size));
		CHECK(got && same(e->json, got) && exact);
		if (!got || !same(e->json, got) || !exact) {
			fprintf(stderr,
				"docs: line %u: bookd answered otherwise\n",
				e->line);
			if (rc == 0)
				print_frame("bookd", buf,
					    MP_HEADER_SIZE + body);
			print_frame("the doc", e->bytes, e->size);
		} else if (print) {
			print_frame("bookd", buf, MP_HEADER_SIZE + body);
		}
		json_decref(got);
	}
	close(fd);
}

int main(void)
{
	const char *dir = getenv("DOCS_DIR");
	char tmpl[] = "/tmp/test_docs.XXXXXX";
	int st;

	if (dir)
		snprintf(doc_path, sizeof(doc_path), "%s/protocol.md", dir);
	else {
		/* this file is <repo>/tests/unit/test_docs_bin.c */
		snprintf(doc_path, sizeof(doc_path), "%s", __FILE__);
		char *p = strstr(doc_path, "/tests/unit/test_docs_bin.c");
		if (!p) {
			printf("docs: cannot find the repo from %s (DOCS_DIR)\n",
			       __FILE__);
			return 1;
		}
		strcpy(p, "/docs/protocol.md");
	}
	if (read_doc())
		return 1;
	printf("docs: %u binary examples in %s\n", ex_count, doc_path);
	test_self_consistent();

	if (!find_bookd()) {
		printf("docs: no bookd (BOOKD_BIN or ../api/bookd): live part "
		       "skipped\n");
	} else if (!mkdtemp(tmpl)) {
		CHECK(!"mkdtemp");
	} else {
		snprintf(data_dir, sizeof(data_dir), "%s/data", tmpl);
		snprintf(log_path, sizeof(log_path), "%s/bookd.log", tmpl);
		signal(SIGPIPE, SIG_IGN);
		int rc = start_bookd();
		CHECK(rc == 0);
		if (rc == 0)
			test_live();
		if (bookd_pid > 0) {
			kill(bookd_pid, SIGTERM);
			waitpid(bookd_pid, &st, 0);
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		char cmd[320];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			fprintf(stderr, "docs: could not remove %s\n", tmpl);
	}
	for (unsigned i = 0; i < ex_count; i++)
		json_decref(ex[i].json);
	printf("docs: %u checks, %u failed\n", check_count, check_fail_count);
	return check_fail_count ? 1 : 0;
}
