/*
 * seed_csv.c: the CSV reader of imports (seed_csv.h): one pass over
 * the bytes, cells written unquoted into one buffer of the input's size
 * (unquoting only shrinks), then the table of cell pointers.
 */
#include "seed_csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void csv_free(struct csv *c)
{
	free(c->text);
	free(c->cell);
	free(c->line);
	c->text = NULL;
	c->cell = NULL;
	c->line = NULL;
	c->rows = c->cols = 0;
}

static int fail(struct csv *c, uint32_t line, const char *msg)
{
	c->err_line = line;
	snprintf(c->err, sizeof(c->err), "%s", msg);
	return -EINVAL;
}

/* Growable arrays of the cells' offsets and of the rows' lines. */
struct grow {
	size_t *off;
	size_t n, cap;
};

static int push(struct grow *g, size_t v)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 256;
		size_t *p = realloc(g->off, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		g->off = p;
		g->cap = cap;
	}
	g->off[g->n++] = v;
	return 0;
}

int csv_parse(struct csv *c, const char *data, size_t size)
{
	struct grow cells = { 0 }, lines = { 0 };
	size_t i = 0, o = 0, row_first = 0;
	uint32_t line = 1, row_line = 1, fields = 0;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (size >= UINT32_MAX)
		return fail(c, 0, "file too large (4 GiB at most)");
	if (memchr(data, '\0', size))
		return fail(c, 0, "a NUL byte: not a text file");
	c->text = malloc(size + 1);
	if (!c->text)
		return -ENOMEM;
	/* a UTF-8 byte order mark is not part of the first name */
	if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < size && rc == 0) {
		bool quoted = false;
		size_t start = o;

		/* a blank line between records: skipped */
		if (fields == 0 && (data[i] == '\n' || data[i] == '\r')) {
			if (data[i] == '\r' && i + 1 < size &&
			    data[i + 1] == '\n')
				i++;
			i++;
			row_line = ++line;
			continue;
		}
		if (data[i] == '"') {
			quoted = true;
			i++;
			for (;;) {
				if (i == size) {
					rc = fail(c, row_line,
						  "a quoted field is not closed");
					goto done;
				}
				if (data[i] == '"') {
					if (i + 1 < size &&
					    data[i + 1] == '"') {
						c->text[o++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				if (data[i] == '\n')
					line++;
				c->text[o++] = data[i++];
			}
		} else {
			while (i < size && data[i] != ',' && data[i] != '\n' &&
			       data[i] != '\r') {
				if (data[i] == '"') {
					rc = fail(c, line,
						  "a quote inside an unquoted "
						  "field");
					break;
				}
				c->text[o++] = data[i++];
			}
			if (rc)
				break;
		}
		c->text[o++] = '\0';
		rc = push(&cells, start);
		fields++;
		if (rc)
			break;
		if (i < size && data[i] == ',') {
			i++;
			if (i == size) /* "a,": an empty last field */
				rc = push(&cells, o), c->text[o++] = '\0',
				fields++;
			continue;
		}
		if (i < size && data[i] == '\r') {
			i++;
			if (i < size && data[i] != '\n') {
				rc = fail(c, line, "a CR not followed by LF");
				break;
			}
		}
		if (i < size && data[i] != '\n') {
			rc = fail(c, line,
				  quoted ? "text after a closing quote"
					 : "unexpected character");
			break;
		}
		/* the end of a record */
		if (lines.n == 0)
			c->cols = fields;
		else if (fields != c->cols) {
			char msg[CSV_ERROR_SIZE];
			snprintf(msg, sizeof(msg),
				 "%u fields, the header has %u", fields,
				 c->cols);
			rc = fail(c, row_line, msg);
			break;
		}
		if (c->cols > CSV_COLS_MAX) {
			rc = fail(c, 1, "more than 256 columns");
			break;
		}
		rc = push(&lines, row_line);
		row_first = cells.n;
		fields = 0;
		if (i < size) {
			i++;
			line++;
		}
		row_line = line;
	}
	(void)row_first;
done:
	if (rc == 0 && fields) { /* a last record with no line break */
		if (lines.n == 0)
			c->cols = fields;
		else if (fields != c->cols) {
			char msg[CSV_ERROR_SIZE];
			snprintf(msg, sizeof(msg),
				 "%u fields, the header has %u", fields,
				 c->cols);
			rc = fail(c, row_line, msg);
		}
		if (rc == 0)
			rc = push(&lines, row_line);
	}
	if (rc == 0 && lines.n == 0)
		rc = fail(c, 1, "no header row");
	if (rc == 0) {
		c->rows = (uint32_t)lines.n;
		c->cell = malloc(cells.n * sizeof(*c->cell) + 1);
		c->line = malloc(lines.n * sizeof(*c->line));
		if (!c->cell || !c->line)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		for (size_t k = 0; k < cells.n; k++)
			c->cell[k] = c->text + cells.off[k];
		for (size_t k = 0; k < lines.n; k++)
			c->line[k] = (uint32_t)lines.off[k];
		/* header names: surrounding spaces are not part of them */
		for (uint32_t k = 0; k < c->cols; k++) {
			char *h = c->cell[k];
			size_t n;
			while (*h == ' ')
				h++;
			n = strlen(h);
			while (n && h[n - 1] == ' ')
				h[--n] = '\0';
			c->cell[k] = h;
		}
	}
	free(cells.off);
	free(lines.off);
	if (rc) {
		uint32_t l = c->err_line;
		char err[CSV_ERROR_SIZE];
		memcpy(err, c->err, sizeof(err));
		csv_free(c);
		c->err_line = l;
		memcpy(c->err, err, sizeof(err));
	}
	return rc;
}

int csv_col(const struct csv *c, const char *name)
{
	for (uint32_t k = 0; k < c->cols; k++)
		if (strcmp(c->cell[k], name) == 0)
			return (int)k;
	return -1;
}
