/*
 * bookbench_report.c: what a run leaves behind. The table on stdout, a JSON
 * result (every number of the run: latency quantiles per operation, outcome
 * counts, the per-second timeline, the non-empty histogram buckets, the
 * check) and a self-contained HTML report: inline SVG plots of throughput
 * and latency over time and of the latency distribution; no script, no
 * external file, no network.
 */
#include "bookbench.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *kind_names[BB_OP_KIND_COUNT] = {
	"book", "cancel", "event_get", "event_list", "booking_get",
};

static double ms(uint64_t ns) { return (double)ns / 1e6; }

uint64_t bb_run_errors(const struct bb_run *run)
{
	uint64_t e = 0;
	for (int c = 0; c < BB_CODE_COUNT; c++)
		if (bb_code_is_error((enum bb_code)c))
			e += run->by_code[c];
	return e;
}

static uint64_t errors_of(const struct bb_run *run)
{
	return bb_run_errors(run);
}

static double rate_of(const struct bb_run *run)
{
	return run->elapsed_s > 0 ? (double)run->count / run->elapsed_s : 0;
}

/* Answers that are decisions (not errors) per second: what comparisons use. */
static double goodput_of(const struct bb_run *run)
{
	return run->elapsed_s > 0
		       ? (double)(run->count - errors_of(run)) / run->elapsed_s
		       : 0;
}

/* A histogram's latency summary in ms: what the table, the JSON and the
 * HTML print of it. */
struct lat {
	uint64_t count;
	double p50, p90, p95, p99, p999, max, mean;
};

static struct lat lat_of(const struct bb_hist *h)
{
	return (struct lat){
		.count = h->count,
		.p50 = ms(bb_hist_quantile(h, 0.5)),
		.p90 = ms(bb_hist_quantile(h, 0.9)),
		.p95 = ms(bb_hist_quantile(h, 0.95)),
		.p99 = ms(bb_hist_quantile(h, 0.99)),
		.p999 = ms(bb_hist_quantile(h, 0.999)),
		.max = ms(h->max_ns),
		.mean = h->count ? h->sum_ns / (double)h->count / 1e6 : 0.0,
	};
}

static void lat_row(FILE *f, const char *name, const struct bb_hist *h)
{
	struct lat l = lat_of(h);
	fprintf(f,
		"  %-12s %10" PRIu64 " %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n",
		name, l.count, l.p50, l.p90, l.p99, l.p999, l.max, l.mean);
}

/* The run's latency rows, written by row: all requests, then each kind of
 * operation that ran. */
static void lat_rows(FILE *f, const struct bb_run *run,
		     void (*row)(FILE *f, const char *name,
				 const struct bb_hist *h))
{
	row(f, "all", &run->hist);
	for (int k = 0; k < BB_OP_KIND_COUNT; k++)
		if (run->hist_kind[k].count > 0)
			row(f, kind_names[k], &run->hist_kind[k]);
}

/* The run's outcomes that happened, each through fmt (its name, " (error)"
 * or "", its count). */
static void code_rows(FILE *f, const struct bb_run *run, const char *fmt)
{
	for (int c = 0; c < BB_CODE_COUNT; c++)
		if (run->by_code[c] > 0)
			fprintf(f, fmt, bb_code_name((enum bb_code)c),
				bb_code_is_error((enum bb_code)c) ? " (error)"
								  : "",
				run->by_code[c]);
}

void bb_report_table(const struct bb_run *run, FILE *f)
{
	fprintf(f,
		"\n== %s on %s: %s loop, %u connections x %u in flight, %u thread%s",
		run->scenario, run->driver, run->mode, run->connections,
		run->inflight, run->threads, run->threads == 1 ? "" : "s");
	if (run->rate > 0)
		fprintf(f, ", %.0f req/s offered", run->rate);
	fprintf(f,
		"\n  %" PRIu64
		" requests in %.2f s: %.0f req/s, %.0f/s not errors; %" PRIu64
		" bookings and %" PRIu64 " cancels acknowledged, %" PRIu64
		" promotions\n",
		run->count, run->elapsed_s, rate_of(run), goodput_of(run),
		run->bookings_acked, run->cancels_acked, run->promotions);
	if (run->rate > 0)
		fprintf(f,
			"  open loop: %.0f req/s offered, %.0f answered; %" PRIu64
			" requests were due but not sent when the run ended%s\n",
			run->rate, rate_of(run), run->unsent,
			run->unsent > run->rate / 100
				? " (the system fell behind)"
				: "");
	fprintf(f, "  %-12s %10s %9s %9s %9s %9s %9s %9s\n", "latency ms",
		"count", "p50", "p90", "p99", "p99.9", "max", "mean");
	lat_rows(f, run, lat_row);
	fprintf(f, "  outcomes:");
	code_rows(f, run, " %s%s %" PRIu64);
	fprintf(f, "\n  errors: %" PRIu64 " (%.2f%%)\n", errors_of(run),
		run->error_pct);
	if (run->failed[0])
		fprintf(f, "  FAILED: %s\n", run->failed);
}

/* ---- Comparisons: each bookd run against the baseline of its scenario -- */

/* A system's run beside the baseline run of the same scenario: what the
 * table, the JSON and the HTML compare. */
struct compare_row {
	const struct bb_run *baseline, *system;
	double baseline_p99_ms, system_p99_ms;
	double goodput_ratio; /* the system's answers that are not errors per
				 second over the baseline's */
	double p99_ratio; /* the baseline's p99 over the system's: > 1 is better */
};

/* Every pair (a baseline run, another run of its scenario), in the order of
 * the baseline runs, then of the others; the caller frees *rows. The count,
 * or -1 out of memory. */
static int compare_rows(const struct bb_run *const *runs, unsigned run_count,
			struct compare_row **rows)
{
	unsigned n = 0, row_max = run_count * run_count;
	*rows = calloc(row_max + 1, sizeof(**rows));
	if (*rows == NULL)
		return -1;
	for (unsigned i = 0; i < run_count; i++) {
		if (strcmp(runs[i]->driver, "baseline-pg") != 0)
			continue;
		for (unsigned j = 0; j < run_count; j++) {
			if (strcmp(runs[j]->scenario, runs[i]->scenario) != 0 ||
			    strcmp(runs[j]->driver, "baseline-pg") == 0)
				continue;
			ASSERT(n < row_max);
			const struct bb_run *a = runs[i], *b = runs[j];
			struct compare_row *row = &(*rows)[n++];
			row->baseline = a;
			row->system = b;
			row->baseline_p99_ms =
				ms(bb_hist_quantile(&a->hist, 0.99));
			row->system_p99_ms =
				ms(bb_hist_quantile(&b->hist, 0.99));
			row->goodput_ratio =
				goodput_of(a) > 0
					? goodput_of(b) / goodput_of(a)
					: 0;
			row->p99_ratio = row->system_p99_ms > 0
						 ? row->baseline_p99_ms /
							   row->system_p99_ms
						 : 0;
		}
	}
	return (int)n;
}

void bb_report_compare(const struct bb_run *const *runs, unsigned run_count,
		       FILE *f)
{
	struct compare_row *rows;
	int n = compare_rows(runs, run_count, &rows);
	bool header = n > 0;
	if (header)
		fprintf(f, "\n%-13s %-13s %11s %9s %-13s %11s %9s %9s %11s\n",
			"scenario", "baseline", "req/s", "p99 ms", "system",
			"req/s", "p99 ms", "x req/s", "p99 ratio");
	for (int k = 0; k < n; k++) {
		const struct compare_row *row = &rows[k];
		const struct bb_run *a = row->baseline, *b = row->system;
		fprintf(f,
			"%-13s %-13s %11.0f %9.3f %-13s %11.0f %9.3f %8.1fx %10.1fx\n",
			a->scenario, a->driver, goodput_of(a),
			row->baseline_p99_ms, b->driver, goodput_of(b),
			row->system_p99_ms, row->goodput_ratio, row->p99_ratio);
	}
	free(rows);
	if (header)
		fprintf(f,
			"(x req/s: the system's answers that are not errors per second over the baseline's; p99 ratio: the "
			"baseline's p99 over the system's, > 1 is better; same connections, the "
			"baseline one request in flight per connection)\n");
}

/* ---- JSON ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_lat(FILE *f, const struct bb_hist *h)
{
	struct lat l = lat_of(h);
	fprintf(f,
		"{\"count\":%" PRIu64
		",\"p50\":%.4f,\"p90\":%.4f,\"p95\":%.4f,\"p99\":%.4f,"
		"\"p999\":%.4f,\"max\":%.4f,\"mean\":%.4f}",
		l.count, l.p50, l.p90, l.p95, l.p99, l.p999, l.max, l.mean);
}

static void now_utc(char *out, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_bookd(FILE *f, const struct bb_bookd_info *b)
{
	if (b == NULL) {
		fputs("null", f);
		return;
	}
	fprintf(f, "{\"version\":");
	if (b->version[0])
		json_str(f, b->version);
	else
		fputs("null", f);
	fprintf(f, ",\"build_type\":");
	if (b->build_type[0])
		json_str(f, b->build_type);
	else
		fputs("null", f);
	fprintf(f, ",\"from\":");
	json_str(f, b->source[0] ? b->source : "unknown");
	fprintf(f, ",\"started_by_bookbench\":%s,\"rate_limits\":\"%s\"",
		b->started ? "true" : "false",
		!b->started	? "bookd's own"
		: b->limits_off ? "off"
				: "kept");
	fprintf(f, ",\"binary_socket\":");
	if (b->binary_socket[0])
		json_str(f, b->binary_socket);
	else
		fputs("null", f);
	fputc('}', f);
}

/* One run as an object of result.json's "runs" (i: its place). */
static void json_run(FILE *f, unsigned i, const struct bb_run *r)
{
	const struct bb_dataset *ds = r->ds;
	fprintf(f,
		"%s\n{\"scenario\":\"%s\",\"driver\":\"%s\",\"mode\":\"%s\","
		"\"connections\":%u,\"inflight\":%u,\"threads\":%u,"
		"\"rate_offered\":%.1f,",
		i ? "," : "", r->scenario, r->driver, r->mode, r->connections,
		r->inflight, r->threads, r->rate);
	fprintf(f,
		"\"dataset\":{\"orgs\":%u,\"events\":%u,\"capacity\":%u,"
		"\"waitlist_capacity\":%u,\"day\":\"%s\",\"run_tag\":\"%s\"},",
		ds->org_count, ds->event_count, ds->capacity,
		ds->waitlist_capacity, ds->day, ds->run_tag);
	fprintf(f,
		"\"elapsed_s\":%.3f,\"requests\":%" PRIu64
		",\"throughput\":%.1f,\"goodput\":%.1f,"
		"\"bookings_acked\":%" PRIu64 ",\"cancels_acked\":%" PRIu64
		",\"promotions\":%" PRIu64 ",\"errors\":%" PRIu64
		",\"unsent\":%" PRIu64 ",",
		r->elapsed_s, r->count, rate_of(r), goodput_of(r),
		r->bookings_acked, r->cancels_acked, r->promotions,
		errors_of(r), r->unsent);
	fprintf(f, "\"error_pct\":%.3f,\"failed\":", r->error_pct);
	if (r->failed[0])
		json_str(f, r->failed);
	else
		fputs("null", f);
	fprintf(f, ",\"latency\":");
	json_lat(f, &r->hist);
	fprintf(f, ",\"by_operation\":{");
	bool first = true;
	for (int k = 0; k < BB_OP_KIND_COUNT; k++) {
		if (r->hist_kind[k].count == 0)
			continue;
		fprintf(f, "%s\"%s\":", first ? "" : ",", kind_names[k]);
		json_lat(f, &r->hist_kind[k]);
		first = false;
	}
	fprintf(f, "},\"by_code\":{");
	first = true;
	for (int c = 0; c < BB_CODE_COUNT; c++) {
		if (r->by_code[c] == 0)
			continue;
		fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",",
			bb_code_name((enum bb_code)c), r->by_code[c]);
		first = false;
	}
	fprintf(f, "},\"check\":");
	if (r->checked) {
		fprintf(f, "{\"ok\":%s,\"problems\":%d,\"report\":",
			r->check_problems == 0 ? "true" : "false",
			r->check_problems);
		json_str(f, r->check_report);
		fprintf(f, "}");
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ",\"system\":%s", r->system[0] ? r->system : "null");
	fprintf(f,
		",\"timeline\":{\"columns\":[\"t_s\",\"requests\",\"errors\",\"p50\","
		"\"p99\",\"max\"],\"rows\":[");
	for (unsigned t = 0; t < r->timeline_count; t++) {
		const struct bb_second *s = &r->timeline[t];
		fprintf(f, "%s[%.3f,%" PRIu64 ",%" PRIu64 ",%.4f,%.4f,%.4f]",
			t ? "," : "", s->t, s->count, s->errors, ms(s->p50_ns),
			ms(s->p99_ns), ms(s->max_ns));
	}
	fprintf(f,
		"]},\"histogram\":{\"columns\":[\"low_ns\",\"high_ns\",\"count\"],\"rows\":[");
	first = true;
	for (unsigned b = 0; b < BB_HIST_BUCKET_COUNT; b++) {
		if (r->hist.buckets[b] == 0)
			continue;
		fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]",
			first ? "" : ",", bb_hist_bucket_low(b),
			bb_hist_bucket_high(b), r->hist.buckets[b]);
		first = false;
	}
	fprintf(f, "]}}");
}

static void report_json(FILE *f, const char *date,
			const struct bb_report_in *in)
{
	fprintf(f,
		"{\"tool\":\"bookbench\",\"date\":\"%s\",\"command\":", date);
	json_str(f, in->command);
	fprintf(f, ",\"machine\":");
	json_str(f, in->machine);
	fprintf(f, ",\"bookd\":");
	json_bookd(f, in->bookd);
	fprintf(f, ",\"latency_unit\":\"ms\",\"runs\":[");
	for (unsigned i = 0; i < in->run_count; i++)
		json_run(f, i, in->runs[i]);
	fprintf(f, "\n],\"comparisons\":[");
	struct compare_row *rows;
	int n = compare_rows(in->runs, in->run_count, &rows);
	for (int k = 0; k < n; k++)
		fprintf(f,
			"%s\n{\"scenario\":\"%s\",\"baseline\":\"%s\",\"system\":\"%s\","
			"\"goodput_ratio\":%.2f,\"p99_ratio\":%.2f}",
			k == 0 ? "" : ",", rows[k].baseline->scenario,
			rows[k].baseline->driver, rows[k].system->driver,
			rows[k].goodput_ratio, rows[k].p99_ratio);
	free(rows);
	fprintf(f, "]}\n");
}

/* ---- HTML ------------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

#define W 640
#define H 240
#define ML 64 /* margins */
#define MR 16
#define MT 24
#define MB 36

static const char *colors[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd" };

/* A step of 1, 2 or 5 times a power of ten that cuts span into about n. */
static double nice_step(double span, int n)
{
	double raw = span / n, mag = pow(10, floor(log10(raw))), r = raw / mag;
	return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

/* A tick mark and its label on the x axis (below the plot) or y axis (left). */
static void tick_x(FILE *f, double xx, const char *anchor, const char *label)
{
	fprintf(f,
		"<line class='tick-x' x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#999'/>"
		"<text x='%.1f' y='%d' text-anchor='%s'>%s</text>\n",
		xx, xx, H - MB, H - MB + 4, xx, H - MB + 15, anchor, label);
}

static void tick_y(FILE *f, double y, const char *label)
{
	fprintf(f,
		"<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/>"
		"<line class='tick-y' x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#999'/>"
		"<text x='%d' y='%.1f' text-anchor='end'>%s</text>\n",
		ML, W - MR, y, y, ML - 4, ML, y, y, ML - 6, y + 4, label);
}

static void num_label(char *out, size_t size, double v, double step)
{
	if (fabs(v) >= 1e6)
		snprintf(out, size, "%.3gM", v / 1e6);
	else if (fabs(v) >= 1e4)
		snprintf(out, size, "%.4gk", v / 1e3);
	else
		snprintf(out, size, "%.*f",
			 step >= 1 ? 0 : (int)ceil(-log10(step)), v);
}

/* A line chart: n points (x[i], ys[s][i]) for each series s, each point
 * marked. Log y when logy (values <= 0 are skipped). Nothing is drawn
 * when no point is (a note says why instead): no empty chart. */
/* A value a chart can draw: finite, not negative, above 0 on a log scale. */
static bool drawable(double v, bool logy)
{
	return isfinite(v) && v >= 0 && !(logy && v <= 0);
}

/* The y on the chart of a drawable value: the plot spans [top, top + height]
 * for the values [0 or 10^lo, hi or 10^hi]. */
static double chart_y(double v, bool logy, double lo, double hi, double top,
		      double height)
{
	ASSERT(drawable(v, logy));
	return logy ? top + height - (log10(v) - lo) / (hi - lo) * height
		    : top + height - v / hi * height;
}

static void svg_lines(FILE *f, const char *title, const char *ylabel,
		      const double *x, const double *const *ys,
		      const char *const *names, unsigned series, unsigned n,
		      bool logy)
{
	double xmax = 0, ymin = INFINITY, ymax = 0;
	unsigned points = 0;
	for (unsigned i = 0; i < n; i++)
		if (x[i] > xmax)
			xmax = x[i];
	for (unsigned s = 0; s < series; s++)
		for (unsigned i = 0; i < n; i++) {
			double v = ys[s][i];
			if (!drawable(v, logy))
				continue;
			points++;
			if (v > ymax)
				ymax = v;
			if (v < ymin)
				ymin = v;
		}
	if (points == 0 || xmax <= 0) {
		fprintf(f, "<p><i>");
		html_text(f, title);
		fprintf(f,
			": no data point (the run was shorter than its first second)</i></p>\n");
		return;
	}
	if (ymax <= 0)
		ymax = 1;
	double xstep = nice_step(xmax, 6);
	xmax = ceil(xmax / xstep - 1e-9) * xstep;
	double lo = 0, hi, ystep = 0;
	if (logy) {
		lo = floor(log10(ymin));
		hi = ceil(log10(ymax));
		if (hi <= lo)
			hi = lo + 1;
	} else {
		ystep = nice_step(ymax, 4);
		hi = ceil(ymax / ystep - 1e-9) * ystep;
		if (hi < ymax * 1.05)
			hi += ystep;
	}
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
		"viewBox='0 0 %d %d' font-family='sans-serif' font-size='11'>\n",
		W, H, W, H);
	fprintf(f, "<text x='%d' y='14' font-size='13' font-weight='bold'>",
		ML);
	html_text(f, title);
	fprintf(f, "</text>\n");
	int pw = W - ML - MR, ph = H - MT - MB;
	char label[32];
	if (logy) {
		/* 1, 2, 5 per decade when there are few decades */
		for (double e = lo; e <= hi + 1e-9; e += 1) {
			for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
				double v = m * pow(10, e), le = log10(v);
				if (le > hi + 1e-9 || (m > 1 && hi - lo > 2))
					break;
				snprintf(label, sizeof(label), "%g", v);
				tick_y(f, MT + ph - (le - lo) / (hi - lo) * ph,
				       label);
			}
		}
	} else {
		for (double v = 0; v <= hi + ystep / 2; v += ystep) {
			num_label(label, sizeof(label), v, ystep);
			tick_y(f, MT + ph - v / hi * ph, label);
		}
	}
	for (double v = 0; v <= xmax + xstep / 2; v += xstep) {
		num_label(label, sizeof(label), v, xstep);
		tick_x(f, ML + v / xmax * pw, "middle", label);
	}
	fprintf(f,
		"<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>\n",
		ML, MT, pw, ph);
	fprintf(f,
		"<text x='%d' y='%d' text-anchor='middle'>seconds into the run</text>\n",
		ML + pw / 2, H - 4);
	fprintf(f,
		"<text x='12' y='%d' transform='rotate(-90 12 %d)' text-anchor='middle'>",
		MT + ph / 2, MT + ph / 2);
	html_text(f, ylabel);
	fprintf(f, "</text>\n");
	for (unsigned s = 0; s < series; s++) {
		fprintf(f,
			"<g fill='%s' stroke='%s'><polyline fill='none' stroke-width='1.5' "
			"points='",
			colors[s % 4], colors[s % 4]);
		for (unsigned i = 0; i < n; i++)
			if (drawable(ys[s][i], logy))
				fprintf(f, "%.1f,%.1f ", ML + x[i] / xmax * pw,
					chart_y(ys[s][i], logy, lo, hi, MT,
						ph));
		fprintf(f, "'/>\n");
		for (unsigned i = 0; i < n; i++)
			if (drawable(ys[s][i], logy))
				fprintf(f,
					"<circle cx='%.1f' cy='%.1f' r='2'><title>%.2f s: %.4g</title>"
					"</circle>",
					ML + x[i] / xmax * pw,
					chart_y(ys[s][i], logy, lo, hi, MT, ph),
					x[i], ys[s][i]);
		fprintf(f, "</g>\n<text x='%d' y='%d' fill='%s'>", W - MR - 90,
			MT + 14 + 14 * (int)s, colors[s % 4]);
		html_text(f, names[s]);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
}

/* The latency distribution: requests per log-spaced latency bin (10 per
 * decade), bars on a log x axis, with p50/p99/p99.9 marked. */
static void svg_hist(FILE *f, const struct bb_hist *h)
{
	enum { PER_DECADE = 10 };
	if (h->count == 0)
		return;
	double lo = floor(log10((double)(h->min_ns ? h->min_ns : 1)));
	double hi = ceil(log10((double)h->max_ns + 1));
	if (hi <= lo)
		hi = lo + 1;
	unsigned bins = (unsigned)((hi - lo) * PER_DECADE);
	uint64_t counts[BB_HIST_MAG_MAX * PER_DECADE] = { 0 };
	if (bins > sizeof(counts) / sizeof(counts[0]))
		bins = sizeof(counts) / sizeof(counts[0]);
	for (unsigned b = 0; b < BB_HIST_BUCKET_COUNT; b++) {
		if (h->buckets[b] == 0)
			continue;
		double mid = ((double)bb_hist_bucket_low(b) +
			      (double)bb_hist_bucket_high(b)) /
			     2;
		int bin = (int)((log10(mid) - lo) * PER_DECADE);
		if (bin < 0)
			bin = 0;
		if (bin >= (int)bins)
			bin = (int)bins - 1;
		counts[bin] += h->buckets[b];
	}
	uint64_t cmax = 1;
	for (unsigned i = 0; i < bins; i++)
		if (counts[i] > cmax)
			cmax = counts[i];
	int pw = W - ML - MR, ph = H - MT - MB;
	fprintf(f,
		"<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
		"viewBox='0 0 %d %d' font-family='sans-serif' font-size='11'>\n",
		W, H, W, H);
	fprintf(f,
		"<text x='%d' y='14' font-size='13' font-weight='bold'>Latency histogram "
		"(requests per bin, 10 bins per decade)</text>\n",
		ML);
	fprintf(f,
		"<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>\n",
		ML, MT, pw, ph);
	char label[32];
	double cstep = nice_step((double)cmax, 4);
	double ctop = ceil((double)cmax / cstep - 1e-9) * cstep;
	for (double v = 0; v <= ctop + cstep / 2; v += cstep) {
		num_label(label, sizeof(label), v, cstep);
		tick_y(f, MT + ph - v / ctop * ph, label);
	}
	double bw = (double)pw / bins;
	for (unsigned i = 0; i < bins; i++) {
		if (counts[i] == 0)
			continue;
		double bh = (double)counts[i] / ctop * ph;
		fprintf(f,
			"<rect class='bar' x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#1f77b4'>"
			"<title>%.4g-%.4g ms: %" PRIu64 "</title></rect>\n",
			ML + i * bw, MT + ph - bh, bw > 1.5 ? bw - 1 : bw, bh,
			pow(10, lo + (double)i / PER_DECADE) / 1e6,
			pow(10, lo + (double)(i + 1) / PER_DECADE) / 1e6,
			counts[i]);
	}
	/* 1, 2, 5 per decade when there are few decades */
	for (double e = lo; e <= hi + 1e-9; e += 1) {
		for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
			double le = log10(m * pow(10, e));
			if (le > hi + 1e-9 || (m > 1 && hi - lo > 2))
				break;
			double xx = ML + (le - lo) / (hi - lo) * pw;
			snprintf(label, sizeof(label), "%g ms",
				 m * pow(10, e) / 1e6);
			tick_x(f, xx,
			       le >= hi - 1e-9	 ? "end"
			       : le <= lo + 1e-9 ? "start"
						 : "middle",
			       label);
		}
	}
	const double qs[] = { 0.5, 0.99, 0.999 };
	const char *qn[] = { "p50", "p99", "p99.9" };
	for (int i = 0; i < 3; i++) {
		double v = (double)bb_hist_quantile(h, qs[i]);
		if (v <= 0)
			continue;
		double xx = ML + (log10(v) - lo) / (hi - lo) * pw;
		fprintf(f,
			"<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#d62728' "
			"stroke-dasharray='4 3'/><text x='%.1f' y='%d' fill='#d62728'>%s</text>\n",
			xx, xx, MT, MT + ph, xx + 3, MT + 12 + 12 * i, qn[i]);
	}
	fprintf(f,
		"<text x='%d' y='%d' text-anchor='middle'>latency (log scale)</text>\n",
		ML + pw / 2, H - 4);
	fprintf(f,
		"<text x='12' y='%d' transform='rotate(-90 12 %d)' text-anchor='middle'>"
		"requests</text>\n",
		MT + ph / 2, MT + ph / 2);
	fprintf(f, "</svg>\n");
}

static void html_lat_row(FILE *f, const char *name, const struct bb_hist *h)
{
	struct lat l = lat_of(h);
	fprintf(f,
		"<tr><td>%s</td><td>%" PRIu64
		"</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
		"<td>%.3f</td><td>%.3f</td></tr>\n",
		name, l.count, l.p50, l.p90, l.p99, l.p999, l.max);
}

/* One run's section of report.html (i: its anchor, run<i>). */
static void html_run(FILE *f, unsigned i, const struct bb_run *r)
{
	const struct bb_dataset *ds = r->ds;
	fprintf(f,
		"<h2 id='run%u'>%s on %s</h2>\n<p>%s loop, %u connections &times; %u in "
		"flight, driven by %u threads",
		i, r->scenario, r->driver, r->mode, r->connections, r->inflight,
		r->threads);
	if (r->rate > 0)
		fprintf(f,
			", %.0f requests/s offered (latency from the intended send time; "
			"%" PRIu64 " were due but not sent when the run ended)",
			r->rate, r->unsent);
	fprintf(f,
		". Data set: %u orgs, %u events on %s, capacity %u, waitlist %u. "
		"%" PRIu64 " requests in %.2f s (%.0f/s); %" PRIu64
		" bookings and %" PRIu64 " cancels acknowledged, %" PRIu64
		" promotions.</p>\n",
		ds->org_count, ds->event_count, ds->day, ds->capacity,
		ds->waitlist_capacity, r->count, r->elapsed_s, rate_of(r),
		r->bookings_acked, r->cancels_acked, r->promotions);
	if (r->failed[0]) {
		fprintf(f, "<p class='bad'>FAILED: ");
		html_text(f, r->failed);
		fprintf(f, "</p>\n");
	}
	fprintf(f,
		"<table><tr><th>latency ms</th><th>count</th><th>p50</th><th>p90</th>"
		"<th>p99</th><th>p99.9</th><th>max</th></tr>\n");
	lat_rows(f, r, html_lat_row);
	fprintf(f,
		"</table>\n<table><tr><th>outcome</th><th>count</th></tr>\n");
	code_rows(f, r, "<tr><td>%s%s</td><td>%" PRIu64 "</td></tr>\n");
	fprintf(f, "</table>\n");
	unsigned n = r->timeline_count;
	double *xs = calloc(n + 1, sizeof(double));
	double *thr = calloc(n + 1, sizeof(double));
	double *p50 = calloc(n + 1, sizeof(double));
	double *p99 = calloc(n + 1, sizeof(double));
	double *mx = calloc(n + 1, sizeof(double));
	if (xs != NULL && thr != NULL && p50 != NULL && p99 != NULL &&
	    mx != NULL) {
		double prev = 0;
		for (unsigned t = 0; t < n; t++) {
			const struct bb_second *s = &r->timeline[t];
			double span = s->t - prev;
			xs[t] = s->t;
			thr[t] = span > 0 ? (double)s->count / span : 0;
			p50[t] = ms(s->p50_ns);
			p99[t] = ms(s->p99_ns);
			mx[t] = ms(s->max_ns);
			prev = s->t;
		}
		const double *ys1[] = { thr };
		const char *n1[] = { "requests/s" };
		svg_lines(f, "Throughput (requests/s, per second)",
			  "requests/s", xs, ys1, n1, 1, n, false);
		const double *ys2[] = { p50, p99, mx };
		const char *n2[] = { "p50", "p99", "max" };
		svg_lines(f, "Latency over time (ms, log scale)", "ms", xs, ys2,
			  n2, 3, n, true);
	}
	free(xs);
	free(thr);
	free(p50);
	free(p99);
	free(mx);
	svg_hist(f, &r->hist);
	if (r->checked) {
		fprintf(f, "<h3>Check: %s</h3>\n<pre>",
			r->check_problems == 0
				? "<span class='ok'>OK</span>"
				: "<span class='bad'>PROBLEMS FOUND</span>");
		html_text(f, r->check_report);
		fprintf(f, "</pre>\n");
	}
	if (r->system[0]) {
		fprintf(f, "<h3>System</h3>\n<pre>");
		html_text(f, r->system);
		fprintf(f, "</pre>\n");
	}
}

static void report_html(FILE *f, const char *date,
			const struct bb_report_in *in)
{
	fprintf(f,
		"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>bookbench report"
		"</title>\n<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;"
		"color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid "
		"#ccc;padding:2px 8px;text-align:right}th{background:#f4f4f4}td:first-child,"
		"th:first-child{text-align:left}pre{background:#f8f8f8;padding:.5em}.bad{color:"
		"#b00;font-weight:bold}.ok{color:#070;font-weight:bold}</style></head><body>\n");
	fprintf(f, "<h1>bookbench report</h1>\n<p>%s &middot; ", date);
	html_text(f, in->machine);
	if (in->bookd != NULL) {
		fprintf(f, " &middot; bookd ");
		html_text(f, in->bookd->version[0] ? in->bookd->version
						   : "(version unknown)");
		if (in->bookd->build_type[0]) {
			fprintf(f, " (");
			html_text(f, in->bookd->build_type);
			fprintf(f, ")");
		}
		if (in->bookd->started)
			fprintf(f,
				", started by bookbench, rate limits %s, "
				"binary protocol over %s",
				in->bookd->limits_off ? "off"
						      : "kept (--bookd-limits)",
				strcmp(in->bookd->binary_socket, "unix") == 0
					? "a unix socket"
					: "loopback TCP");
	}
	fprintf(f, "</p>\n<pre>");
	html_text(f, in->command);
	fprintf(f,
		"</pre>\n<h2>Summary</h2>\n<table><tr><th>scenario</th><th>system</th>"
		"<th>mode</th><th>connections &times; in flight</th><th>requests</th><th>req/s</th>"
		"<th>not errors/s</th>"
		"<th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>errors</th>"
		"<th>check</th></tr>\n");
	for (unsigned i = 0; i < in->run_count; i++) {
		const struct bb_run *r = in->runs[i];
		fprintf(f,
			"<tr><td><a href='#run%u'>%s</a></td><td>%s</td><td>%s",
			i, r->scenario, r->driver, r->mode);
		if (r->rate > 0)
			fprintf(f, " %.0f/s", r->rate);
		fprintf(f,
			"</td><td>%u &times; %u</td><td>%" PRIu64
			"</td><td>%.0f</td><td>%.0f</td>"
			"<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%" PRIu64
			"</td>"
			"<td>%s</td></tr>\n",
			r->connections, r->inflight, r->count, rate_of(r),
			goodput_of(r), ms(bb_hist_quantile(&r->hist, 0.5)),
			ms(bb_hist_quantile(&r->hist, 0.99)),
			ms(bb_hist_quantile(&r->hist, 0.999)),
			ms(r->hist.max_ns), errors_of(r),
			r->failed[0] ? "<span class='bad'>FAILED: errors</span>"
			: !r->checked ? "-"
			: r->check_problems == 0
				? "<span class='ok'>OK</span>"
				: "<span class='bad'>PROBLEMS</span>");
	}
	fprintf(f, "</table>\n");
	struct compare_row *rows;
	int cmp_count = compare_rows(in->runs, in->run_count, &rows);
	if (cmp_count > 0)
		fprintf(f,
			"<h2>Side by side</h2>\n<table><tr><th>scenario</th>"
			"<th>system</th><th>req/s</th><th>baseline req/s</th>"
			"<th>throughput ratio</th><th>p99 ms</th><th>baseline p99 ms</th>"
			"<th>p99 ratio (baseline / system)</th></tr>\n");
	for (int k = 0; k < cmp_count; k++) {
		const struct compare_row *row = &rows[k];
		fprintf(f,
			"<tr><td>%s</td><td>%s</td><td>%.0f</td><td>%.0f</td><td>%.1f&times;"
			"</td><td>%.3f</td><td>%.3f</td><td>%.1f&times;</td></tr>\n",
			row->baseline->scenario, row->system->driver,
			goodput_of(row->system), goodput_of(row->baseline),
			row->goodput_ratio, row->system_p99_ms,
			row->baseline_p99_ms, row->p99_ratio);
	}
	free(rows);
	if (cmp_count > 0)
		fprintf(f, "</table>\n");
	for (unsigned i = 0; i < in->run_count; i++)
		html_run(f, i, in->runs[i]);
	fprintf(f, "</body></html>\n");
}

/* ---- Files ------------------------------------------------------------ */

int bb_report_write(enum bb_report_format format, const struct bb_report_in *in,
		    const char *path)
{
	static void (*const writers[])(FILE * f, const char *date,
				       const struct bb_report_in *in) = {
		[BB_REPORT_JSON] = report_json,
		[BB_REPORT_HTML] = report_html,
	};
	char date[32];

	ASSERT((unsigned)format < sizeof(writers) / sizeof(writers[0]));
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	now_utc(date, sizeof(date));
	writers[format](f, date, in);
	return fclose(f) == 0 ? 0 : -1;
}
