/* Measuring the rules extractor on a golden file, per field and per slice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include "vd_buf.h"
#include "vd_extract_rules.h"

enum { MAX_SLICES = 64 };

typedef struct slice_stats {
  char name[64];
  size_t rows;
  size_t correct[VD_EXTRACT_FIELD_COUNT];
} slice_stats;

struct vd_extract_eval {
  size_t rows, all_correct;
  size_t correct[VD_EXTRACT_FIELD_COUNT];
  slice_stats slices[MAX_SLICES];
  size_t nslices;
  size_t confident_filled, confident_correct;
  double total_us;
  vd_buf failures; /* "id field: expected X, got Y\n" lines */
};

static slice_stats *slice_for(vd_extract_eval *e, const char *name) {
  for (size_t i = 0; i < e->nslices; i++)
    if (strcmp(e->slices[i].name, name) == 0) return &e->slices[i];
  if (e->nslices == MAX_SLICES) return NULL;
  slice_stats *s = &e->slices[e->nslices++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  return s;
}

/* CPU time of this thread: on a loaded machine wall time would measure the other processes. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool eval_row(vd_extract_eval *e, const vd_gazetteer *g, const json_t *row, const char *path,
                     int line, vd_error *err) {
  const char *id = json_string_value(json_object_get(row, "id"));
  const char *slice = json_string_value(json_object_get(row, "slice"));
  const char *ref = json_string_value(json_object_get(row, "reference_date"));
  const char *text = json_string_value(json_object_get(row, "text"));
  const json_t *expected = json_object_get(row, "expected");
  if (!id || !slice || !ref || !text || !json_is_object(expected))
    return vd_error_at(err, path, line, 1,
                       "a row needs string id, slice, reference_date, text and object expected");
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
    if (!json_object_get(expected, vd_extract_field_name((vd_extract_field)f)))
      return vd_error_at(err, path, line, 1, "expected.%s is missing",
                         vd_extract_field_name((vd_extract_field)f));
  slice_stats *s = slice_for(e, slice);
  if (!s) return vd_error_at(err, path, line, 1, "more than %d slices", MAX_SLICES);
  vd_extract_result r;
  uint64_t t0 = thread_cpu_ns();
  if (!vd_extract_rules(g, text, strlen(text), ref, &r, err)) {
    vd_error_prefix(err, "%s:%d", path, line);
    return false;
  }
  e->total_us += (double)(thread_cpu_ns() - t0) / 1000.0;
  e->rows++;
  s->rows++;
  bool all = true;
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) {
    const char *name = vd_extract_field_name((vd_extract_field)f);
    const json_t *want = json_object_get(expected, name);
    const json_t *got = json_object_get(r.fields, name);
    bool ok = vd_extract_field_equal((vd_extract_field)f, want, got);
    if (ok) {
      e->correct[f]++;
      s->correct[f]++;
    } else {
      all = false;
      char *ws = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
      char *gs = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
      vd_buf_printf(&e->failures, "%s %s: expected %s, got %s%s\n", id, name, ws ? ws : "?",
                    gs ? gs : "?", (r.confident & VD_EXTRACT_BIT(f)) ? " (confident)" : "");
      free(ws);
      free(gs);
    }
    if (r.confident & VD_EXTRACT_BIT(f)) {
      e->confident_filled++;
      if (ok) e->confident_correct++;
    }
  }
  if (all) e->all_correct++;
  json_decref(r.fields);
  return true;
}

vd_extract_eval *vd_extract_eval_golden(const vd_gazetteer *g, const char *golden_path,
                                        vd_error *err) {
  size_t size = 0;
  char *text = vd_read_file(golden_path, 64u << 20, &size, err);
  if (!text) return NULL;
  vd_extract_eval *e = calloc(1, sizeof *e);
  if (!e) {
    free(text);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  int line = 0;
  size_t pos = 0;
  bool ok = true;
  while (ok && pos < size) {
    line++;
    char *s = text + pos;
    char *nl = memchr(s, '\n', size - pos);
    size_t n = nl ? (size_t)(nl - s) : size - pos;
    pos += n + (nl ? 1 : 0);
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
    if (k == n) continue;
    json_error_t jerr;
    json_t *row = json_loadb(s, n, 0, &jerr);
    if (!row || !json_is_object(row)) {
      vd_error_at(err, golden_path, line, row ? 1 : jerr.column, "%s",
                  row ? "a row must be a JSON object" : jerr.text);
      json_decref(row);
      ok = false;
      break;
    }
    ok = eval_row(e, g, row, golden_path, line, err);
    json_decref(row);
  }
  free(text);
  if (ok && e->rows == 0) ok = vd_error_at(err, golden_path, 1, 1, "the golden file has no rows");
  if (!ok) {
    vd_extract_eval_free(e);
    return NULL;
  }
  return e;
}

static double ratio(size_t a, size_t b) { return b ? (double)a / (double)b : 0.0; }

static size_t slice_total(const slice_stats *s) {
  size_t t = 0;
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) t += s->correct[f];
  return t;
}

json_t *vd_extract_eval_json(const vd_extract_eval *e) {
  json_t *fields = json_object();
  size_t sum = 0;
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) {
    json_object_set_new(fields, vd_extract_field_name((vd_extract_field)f),
                        json_real(ratio(e->correct[f], e->rows)));
    sum += e->correct[f];
  }
  json_t *slices = json_object();
  for (size_t i = 0; i < e->nslices; i++) {
    const slice_stats *s = &e->slices[i];
    json_t *sf = json_object();
    for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
      json_object_set_new(sf, vd_extract_field_name((vd_extract_field)f),
                          json_real(ratio(s->correct[f], s->rows)));
    json_object_set_new(
        slices, s->name,
        json_pack("{s:I, s:f, s:o}", "rows", (json_int_t)s->rows, "accuracy",
                  ratio(slice_total(s), s->rows * VD_EXTRACT_FIELD_COUNT), "fields", sf));
  }
  return json_pack("{s:I, s:f, s:f, s:o, s:o, s:{s:I, s:I, s:f}, s:f}", "rows", (json_int_t)e->rows,
                   "mean_accuracy", ratio(sum, e->rows * VD_EXTRACT_FIELD_COUNT),
                   "rows_all_correct", ratio(e->all_correct, e->rows), "fields", fields, "slices",
                   slices, "confident", "filled", (json_int_t)e->confident_filled, "correct",
                   (json_int_t)e->confident_correct, "precision",
                   ratio(e->confident_correct, e->confident_filled), "us_per_request",
                   e->rows ? e->total_us / (double)e->rows : 0.0);
}

static const char *const short_names[VD_EXTRACT_FIELD_COUNT] = {
    "dest", "start", "end", "nights", "adults", "children", "budget", "interests"};

void vd_extract_eval_print(const vd_extract_eval *e, FILE *out, bool failures) {
  size_t sum = 0;
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) sum += e->correct[f];
  fprintf(out,
          "Rules extractor on %zu rows: mean field accuracy %.1f%%, rows fully right %.1f%%\n\n",
          e->rows, 100.0 * ratio(sum, e->rows * VD_EXTRACT_FIELD_COUNT),
          100.0 * ratio(e->all_correct, e->rows));
  fprintf(out, "| field | accuracy |\n| --- | ---: |\n");
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
    fprintf(out, "| %s | %.1f%% |\n", vd_extract_field_name((vd_extract_field)f),
            100.0 * ratio(e->correct[f], e->rows));
  fprintf(out, "\n| slice | rows | mean |");
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) fprintf(out, " %s |", short_names[f]);
  fprintf(out, "\n| --- | ---: | ---: |");
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) fprintf(out, " ---: |");
  fprintf(out, "\n");
  for (size_t i = 0; i < e->nslices; i++) {
    const slice_stats *s = &e->slices[i];
    fprintf(out, "| %s | %zu | %.0f%% |", s->name, s->rows,
            100.0 * ratio(slice_total(s), s->rows * VD_EXTRACT_FIELD_COUNT));
    for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
      fprintf(out, " %.0f%% |", 100.0 * ratio(s->correct[f], s->rows));
    fprintf(out, "\n");
  }
  fprintf(out,
          "\nConfident fields: %zu filled, %zu right (precision %.1f%%). Mean time per request: "
          "%.1f us.\n",
          e->confident_filled, e->confident_correct,
          100.0 * ratio(e->confident_correct, e->confident_filled),
          e->rows ? e->total_us / (double)e->rows : 0.0);
  if (failures && e->failures.len) fprintf(out, "\nMismatches:\n%s", e->failures.data);
}

void vd_extract_eval_free(vd_extract_eval *e) {
  if (!e) return;
  vd_buf_free(&e->failures);
  free(e);
}
