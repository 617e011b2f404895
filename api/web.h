/*
 * web.h: the static files bookd serves (web.c): web/'s pages, scripts and
 * styles, embedded in the binary at build time (web/embed.cmake ->
 * web_files.c), so that a bookd binary serves its pages without a folder
 * beside it. web/README.md says which URL serves which file; http_routes.c
 * answers them (GET, HEAD, If-None-Match) when no operation has the path.
 */
#ifndef BOOKD_WEB_H
#define BOOKD_WEB_H

#include <stddef.h>

/* One file of web/, as embed.cmake wrote it. */
struct web_file {
	const char *name; /* relative to web/: "index.html", "app.js" */
	const char *data; /* size bytes (and a NUL after them) */
	size_t size;
	const char *etag; /* strong: "\"<16 hex of its SHA-256>\"" */
};

extern const struct web_file web_files[]; /* by name (web_files.c) */
extern const unsigned web_file_count;

/* The file a URL path p[0..n) (raw, before '?') names, else NULL:
 *   "/"            -> index.html
 *   "/web/<name>"  -> <name> (any file of web/, by its exact name)
 *   "/<page>"      -> <page>.html, when <page> is letters, digits, '-'
 *                     and '_' only (so "/status" -> status.html). */
const struct web_file *web_find(const char *p, size_t n);

/* The Content-Type of a file, from its name's extension. */
const char *web_content_type(const struct web_file *f);

#endif
