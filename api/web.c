/*
 * web.c: finding an embedded file of web/ by its URL path, and its
 * Content-Type (web.h). The table is web_files.c, generated from web/ by
 * web/embed.cmake; it is small (a few files), so a lookup is a walk.
 * The URL rules are web.h's; every name compared is one of the table's,
 * so no request's bytes reach a file system and ".." names nothing.
 */
#include "web.h"

#include "bookd_assert.h"

#include <stdbool.h>
#include <string.h>

#define WEB_PAGE_SIZE_MAX 64 /* "/<page>": the longest page name looked up */

static const struct web_file *by_name(const char *name, size_t n)
{
	for (unsigned i = 0; i < web_file_count; i++) {
		const struct web_file *f = &web_files[i];
		if (strlen(f->name) == n && memcmp(f->name, name, n) == 0)
			return f;
	}
	return NULL;
}

static bool page_byte(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

const struct web_file *web_find(const char *p, size_t n)
{
	static const char prefix[] = "/web/";
	char page[WEB_PAGE_SIZE_MAX + sizeof(".html")];

	if (!p || n == 0 || p[0] != '/')
		return NULL;
	if (n == 1)
		return by_name("index.html", strlen("index.html"));
	if (n > sizeof(prefix) - 1 &&
	    memcmp(p, prefix, sizeof(prefix) - 1) == 0)
		return by_name(p + sizeof(prefix) - 1,
			       n - (sizeof(prefix) - 1));
	if (n - 1 > WEB_PAGE_SIZE_MAX)
		return NULL;
	for (size_t i = 1; i < n; i++)
		if (!page_byte(p[i]))
			return NULL;
	memcpy(page, p + 1, n - 1);
	memcpy(page + n - 1, ".html", strlen(".html"));
	ASSERT(n - 1 + strlen(".html") <= sizeof(page));
	return by_name(page, n - 1 + strlen(".html"));
}

const char *web_content_type(const struct web_file *f)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	size_t n;

	ASSERT(f && f->name);
	n = strlen(f->name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t e = strlen(types[i].ext);
		if (n > e && strcmp(f->name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	/* embed.cmake takes only the extensions above */
	ASSERT(!"a served file of an unknown type");
	return "application/octet-stream";
}
