/*
 * fuzz_csv.c: libFuzzer target for the seed import's CSV reader
 * (api/seed_csv.c) and its row checks (api/seed_import.c, a dry run with
 * no core): any bytes as a registrations file next to a small valid
 * backup, and as an instances file. Never a crash, never a read out of
 * bounds; a file that does not parse is refused with a line; every row
 * counted or reported.
 */
#include "node.h"
#include "seed_csv.h"
#include "seed_import.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The import thread's node (not used by a dry run without a core). */
core *node_core(node *n)
{
	(void)n;
	abort();
}
int node_wait_durable(node *n, uint64_t lsn)
{
	(void)n, (void)lsn;
	abort();
}

static void put(struct import_src *src, enum imp_table t, const void *data,
		size_t size)
{
	src->file[t].data = malloc(size + 1);
	memcpy(src->file[t].data, data, size);
	src->file[t].size = size;
	memcpy(src->file[t].name, "f.csv", 6);
}

static const char instances[] =
	"id,org_id,series_id,start_time,end_time,capacity,status\n"
	"i1,o1,,2026-09-01 16:00:00+00,2026-09-01 17:00:00+00,2,\n"
	"i2,o1,s1,2026-12-01T10:00:00Z,,1,cancelled\n";
static const char series[] = "id,org_id,title,duration_minutes\n"
			     "s1,o1,Yoga,60\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct import_report rep;
	struct import_opts o = { .dry_run = true,
				 .now = INT64_C(1790000000000) };
	struct import_src src;
	struct csv c;

	if (csv_parse(&c, (const char *)data, size) == 0) {
		for (uint32_t r = 0; r < c.rows; r++)
			for (uint32_t k = 0; k < c.cols; k++)
				if (strlen(csv_get(&c, r, (int)k)) > size)
					abort(); /* a cell is inside the input */
	} else if (c.err[0] == '\0') {
		abort(); /* a refusal says why */
	}
	csv_free(&c);

	memset(&src, 0, sizeof(src));
	put(&src, IMP_INSTANCES, instances, sizeof(instances) - 1);
	put(&src, IMP_SERIES, series, sizeof(series) - 1);
	put(&src, IMP_REGISTRATIONS, data, size);
	import_run(&src, &o, NULL, NULL, &rep);
	if (!rep.refused && rep.errors)
		abort();
	import_src_free(&src);

	memset(&src, 0, sizeof(src));
	put(&src, IMP_INSTANCES, data, size);
	import_run(&src, &o, NULL, NULL, &rep);
	import_src_free(&src);
	return 0;
}
