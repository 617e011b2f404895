/*
 * bookctl_seed.c: `bookctl import seed DIR` (or `FILE.csv...`): the seed's
 * backup tables imported with their history by bookd's HTTP route POST
 * /v1/admin/import (api/seed_import.h; docs/operations.md "Migrating from
 * the seed"), then followed with GET /v1/admin/import until it ends; the
 * report (JSON) on stdout. bookd reads the files itself: bookctl and bookd
 * share the machine (or the paths). HTTP through libcurl.
 */
#include "bookctl_seed.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct body {
	char *p;
	size_t n;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;
	char *q = realloc(b->p, b->n + add + 1);

	if (!q)
		return 0;
	memcpy(q + b->n, p, add);
	b->n += add;
	q[b->n] = '\0';
	b->p = q;
	return add;
}

/* One request: 0 and *status, *out (malloc'd) or -1 (transport). */
static int call(const char *url, const char *key, const char *post,
		long *status, char **out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct body b = { NULL, 0 };
	char auth[600];
	CURLcode rc;

	if (!h)
		return -1;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	if (post)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	else
		fprintf(stderr, "bookctl: %s: %s\n", url,
			curl_easy_strerror(rc));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	*out = b.p ? b.p : strdup("");
	return rc == CURLE_OK ? 0 : -1;
}

/* A JSON string's text, escaped. */
static void json_escape(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\%c", c);
		else if (c < 0x20)
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

/* The request's "dir" (one directory) or "files" (each a file) field,
 * the paths made absolute: 0, or 2 (usage: a path that is neither). */
static int source_json(const char *const *paths, unsigned count, char **out)
{
	struct stat st;
	char real[PATH_MAX], esc[2 * PATH_MAX];
	char *s = NULL;
	size_t n = 0;
	FILE *f;

	if (count == 1 && stat(paths[0], &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!realpath(paths[0], real)) {
			perror(paths[0]);
			return 2;
		}
		json_escape(esc, sizeof(esc), real);
		return asprintf(out, "\"dir\":\"%s\"", esc) < 0 ? 3 : 0;
	}
	if (!(f = open_memstream(&s, &n)))
		return 3;
	fputs("\"files\":[", f);
	for (unsigned i = 0; i < count; i++) {
		if (stat(paths[i], &st) != 0 || !S_ISREG(st.st_mode) ||
		    !realpath(paths[i], real)) {
			fprintf(stderr,
				"bookctl: %s: not a directory or a file%s\n",
				paths[i],
				count > 1 ? " (several: the tables' CSV files)"
					  : "");
			fclose(f);
			free(s);
			return 2;
		}
		json_escape(esc, sizeof(esc), real);
		fprintf(f, "%s\"%s\"", i ? "," : "", esc);
	}
	fputs("]", f);
	fclose(f);
	*out = s;
	return 0;
}

int bookctl_import_seed(const char *const *paths, unsigned count, bool dry_run,
			bool accept_past, const char *http, const char *key)
{
	char url[512], *body, *src = NULL;
	char *post = NULL;
	long status = 0;
	int exit_rc = 1, rc;

	if ((rc = source_json(paths, count, &src)) != 0)
		return rc;
	rc = asprintf(&post, "{%s,\"dry_run\":%s,\"accept_past_conflicts\":%s}",
		      src, dry_run ? "true" : "false",
		      accept_past ? "true" : "false");
	free(src);
	if (rc < 0)
		return 3;
	snprintf(url, sizeof(url), "%s/v1/admin/import", http);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (call(url, key, post, &status, &body) != 0) {
		free(post);
		return 3;
	}
	free(post);
	if (status != 202) {
		fprintf(stderr, "bookctl: import: HTTP %ld: %s", status, body);
		free(body);
		return status == 401 || status == 403 || status == 409 ||
				       status == 422
			       ? 1
			       : 3;
	}
	free(body);
	for (;;) { /* until it ends; the report is the last answer */
		struct timespec t = { 0, 200 * 1000 * 1000 };
		if (call(url, key, NULL, &status, &body) != 0)
			return 3;
		if (status != 200) {
			fprintf(stderr, "bookctl: import: HTTP %ld: %s", status,
				body);
			free(body);
			return 3;
		}
		if (!strstr(body, "\"state\":\"running\"")) {
			fputs(body, stdout);
			exit_rc = strstr(body, "\"state\":\"done\"") ? 0 : 1;
			free(body);
			break;
		}
		free(body);
		nanosleep(&t, NULL);
	}
	curl_global_cleanup();
	return exit_rc;
}
