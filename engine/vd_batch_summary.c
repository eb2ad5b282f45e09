/* The summary of a batch run and the output line of a rejected row (vd_batch.h). Kept apart from
 * the verb so that it links without the pipeline. */
#include <stdlib.h>
#include <string.h>

#include "vd_batch.h"

enum {
  MAX_REASONS = 64, /* distinct reject reasons kept; more are counted as "other" */
  REASON_MAX = VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 8, /* "field: message" */
};

typedef struct reason {
  char *text;
  size_t rows;
  size_t first_line;
} reason;

struct vd_batch_summary {
  size_t decided, rejected;
  json_t *actions;   /* action → results */
  json_t *fallbacks; /* reason → rows */
  reason reasons[MAX_REASONS];
  size_t reason_count;
  size_t other_reason_rows;
  size_t other_reason_first_line;
};

vd_batch_summary *vd_batch_summary_new(void) {
  vd_batch_summary *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->actions = json_object();
  s->fallbacks = json_object();
  return s;
}

void vd_batch_summary_free(vd_batch_summary *s) {
  if (!s) return;
  json_decref(s->actions);
  json_decref(s->fallbacks);
  for (size_t i = 0; i < s->reason_count; i++) free(s->reasons[i].text);
  free(s);
}

static void bump(json_t *counts, const char *key) {
  json_t *v = json_object_get(counts, key);
  json_object_set_new(counts, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

void vd_batch_summary_decided(vd_batch_summary *s, const json_t *response) {
  s->decided++;
  size_t i;
  json_t *result;
  json_array_foreach(json_object_get(response, "results"), i, result) {
    const char *action = json_string_value(json_object_get(result, "action"));
    bump(s->actions, action ? action : "(none)");
  }
  json_t *fallback = json_object_get(response, "fallback");
  if (json_is_object(fallback)) {
    const char *why = json_string_value(json_object_get(fallback, "reason"));
    bump(s->fallbacks, why ? why : "(unknown)");
  }
}

/* "field: message" without the offending value, so that like problems group together. */
static void reason_text(const vd_error *e, char *out, size_t size) {
  char message[VD_ERROR_MESSAGE_MAX];
  snprintf(message, sizeof message, "%s", e->message);
  char *got = strstr(message, ", got ");
  if (!got) got = strstr(message, " got \"");
  if (got) *got = '\0';
  if (e->field[0])
    snprintf(out, size, "%s: %s", e->field, message);
  else
    snprintf(out, size, "%s", message);
}

static void count_reason(vd_batch_summary *s, const char *text, size_t line) {
  for (size_t i = 0; i < s->reason_count; i++)
    if (strcmp(s->reasons[i].text, text) == 0) {
      s->reasons[i].rows++;
      return;
    }
  if (s->reason_count < MAX_REASONS) {
    char *copy = strdup(text);
    if (copy) {
      s->reasons[s->reason_count++] = (reason){copy, 1, line};
      return;
    }
  }
  if (s->other_reason_rows++ == 0) s->other_reason_first_line = line;
}

void vd_batch_summary_rejected(vd_batch_summary *s, size_t line, const vd_diags *problems) {
  s->rejected++;
  char seen[8][REASON_MAX]; /* a row counts once per reason */
  size_t nseen = 0;
  for (size_t i = 0; problems && i < problems->count; i++) {
    char text[REASON_MAX];
    reason_text(&problems->items[i], text, sizeof text);
    bool dup = false;
    for (size_t j = 0; j < nseen; j++) dup = dup || strcmp(seen[j], text) == 0;
    if (dup) continue;
    if (nseen < 8) memcpy(seen[nseen++], text, sizeof text);
    count_reason(s, text, line);
  }
  if (!problems || problems->count == 0) count_reason(s, "(no reason given)", line);
}

static int by_rows(const void *a, const void *b) {
  const reason *x = a, *y = b;
  if (x->rows != y->rows) return x->rows < y->rows ? 1 : -1;
  return x->first_line < y->first_line ? -1 : x->first_line > y->first_line;
}

/* The reasons, most rows first (a sorted copy; the caller frees it). */
static reason *sorted_reasons(const vd_batch_summary *s) {
  reason *r = malloc((s->reason_count + 1) * sizeof *r);
  if (!r) return NULL;
  memcpy(r, s->reasons, s->reason_count * sizeof *r);
  qsort(r, s->reason_count, sizeof *r, by_rows);
  return r;
}

json_t *vd_batch_summary_json(const vd_batch_summary *s) {
  json_t *reasons = json_array();
  reason *sorted = sorted_reasons(s);
  for (size_t i = 0; sorted && i < s->reason_count; i++)
    json_array_append_new(reasons, json_pack("{s:s, s:I, s:I}", "reason", sorted[i].text, "rows",
                                             (json_int_t)sorted[i].rows, "first_line",
                                             (json_int_t)sorted[i].first_line));
  free(sorted);
  if (s->other_reason_rows)
    json_array_append_new(reasons, json_pack("{s:s, s:I, s:I}", "reason", "(other reasons)", "rows",
                                             (json_int_t)s->other_reason_rows, "first_line",
                                             (json_int_t)s->other_reason_first_line));
  return json_pack("{s:I, s:I, s:I, s:O, s:O, s:o}", "rows",
                   (json_int_t)s->decided + (json_int_t)s->rejected, "decided",
                   (json_int_t)s->decided, "rejected", (json_int_t)s->rejected, "actions",
                   s->actions, "fallbacks", s->fallbacks, "reject_reasons", reasons);
}

void vd_batch_summary_print(const vd_batch_summary *s, FILE *f) {
  fprintf(f, "rows: %zu (decided %zu, rejected %zu)\n", s->decided + s->rejected, s->decided,
          s->rejected);
  const char *key;
  json_t *v;
  if (json_object_size(s->actions)) {
    fprintf(f, "decisions by action (one per candidate):\n");
    json_object_foreach(s->actions, key, v)
        fprintf(f, "  %-12s %lld\n", key, (long long)json_integer_value(v));
  }
  if (json_object_size(s->fallbacks)) {
    fprintf(f, "rows decided on rules alone (model fallback):\n");
    json_object_foreach(s->fallbacks, key, v)
        fprintf(f, "  %-12s %lld\n", key, (long long)json_integer_value(v));
  }
  if (s->rejected) {
    fprintf(f, "rows rejected, by reason:\n");
    reason *sorted = sorted_reasons(s);
    for (size_t i = 0; sorted && i < s->reason_count; i++)
      fprintf(f, "  %6zu  %s (first at line %zu)\n", sorted[i].rows, sorted[i].text,
              sorted[i].first_line);
    free(sorted);
    if (s->other_reason_rows)
      fprintf(f, "  %6zu  (other reasons) (first at line %zu)\n", s->other_reason_rows,
              s->other_reason_first_line);
  }
}

json_t *vd_batch_reject_json(size_t line, const vd_diags *problems) {
  json_t *list = json_array();
  for (size_t i = 0; problems && i < problems->count; i++) {
    const vd_error *e = &problems->items[i];
    json_t *item =
        json_pack("{s:o, s:s}", "field", e->field[0] ? json_string(e->field) : json_null(),
                  "message", e->message);
    json_array_append_new(list, item);
  }
  const vd_error *first = problems && problems->count ? &problems->items[0] : NULL;
  char message[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 64];
  size_t n = problems ? problems->count : 0;
  snprintf(message, sizeof message, "the request breaks the schema in %zu place%s%s%s%s%s", n,
           n == 1 ? "" : "s", first ? ": " : "", first && first->field[0] ? first->field : "",
           first && first->field[0] ? ": " : "", first ? first->message : "");
  json_t *error = json_pack(
      "{s:s, s:s, s:o, s:o}", "code", "invalid_request", "message", message, "field",
      first && first->field[0] ? json_string(first->field) : json_null(), "violations", list);
  return json_pack("{s:I, s:o}", "line", (json_int_t)line, "error", error);
}
