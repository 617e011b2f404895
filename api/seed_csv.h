/*
 * seed_csv.h: CSV files as the seed's backups are written (PostgreSQL's
 * COPY ... CSV HEADER: RFC 4180), read whole into cells (seed_csv.c),
 * for the importer (api/seed_import.c) and its tests and fuzz target.
 *
 * A file is a header row, then records: fields separated by commas, a
 * field in double quotes may hold commas, line breaks and quotes doubled
 * (""); records end with LF or CRLF; the last may have no line break.
 * An unquoted empty field (PostgreSQL's NULL) and a quoted empty one both
 * read as "". Each record keeps the line it starts on, for reports
 * (file:line). A record whose field count is not the header's, a quote
 * not closed, or a quote inside an unquoted field is refused with its
 * line; blank lines are skipped.
 */
#ifndef BOOKD_API_SEED_CSV_H
#define BOOKD_API_SEED_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CSV_ERROR_SIZE 160
#define CSV_COLS_MAX 256

struct csv {
	char *text;	/* the unquoted cells, each NUL-terminated */
	char **cell;	/* rows * cols, row 0 the header */
	uint32_t *line; /* the line each row starts on (1-based) */
	uint32_t rows;	/* header included */
	uint32_t cols;
	uint32_t err_line; /* on failure: where */
	char err[CSV_ERROR_SIZE];
};

/* Parses data[0..size) (not changed; NULs in it are refused): 0, or
 * -EINVAL with c->err and c->err_line, -ENOMEM. c is freed by csv_free
 * either way. */
int csv_parse(struct csv *c, const char *data, size_t size);
void csv_free(struct csv *c);

/* The column named name in the header (exact), or -1. */
int csv_col(const struct csv *c, const char *name);

/* Cell (row, col); "" for col < 0. */
static inline const char *csv_get(const struct csv *c, uint32_t row, int col)
{
	return col < 0 ? "" : c->cell[(size_t)row * c->cols + (uint32_t)col];
}

#endif
