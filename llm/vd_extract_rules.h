/* vd_extract_rules: the deterministic trip-request extractor.
 *
 * The `extract` LLM task runs this first and falls back to it: from free text and a reference
 * date ("today" for the request) it fills the eight trip fields of the extraction golden set
 * (destinations, start_date, end_date, nights, adults, children, budget, interests) by rules —
 * explicit and relative dates, holidays, durations, party counts, budget wording, an interest
 * vocabulary and a gazetteer of destinations — and says which fields it filled with confidence,
 * so that the LLM is asked only for the rest.
 *
 * Ownership: a vd_gazetteer is loaded once, immutable afterwards and safe to share between
 * threads; free it with vd_gazetteer_free. vd_extract_rules() is reentrant and allocates only the
 * result: out->fields is a new jansson reference the caller releases with json_decref. JSON
 * arguments are borrowed unless a function says it returns a new reference.
 */
#ifndef VD_EXTRACT_RULES_H
#define VD_EXTRACT_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"

/* The eight fields, in the golden set's order. */
typedef enum vd_extract_field {
  VD_EXTRACT_DESTINATIONS, /* array of "City, Country" / "Region, Country" / "Country" strings */
  VD_EXTRACT_START_DATE,   /* "YYYY-MM-DD" or null */
  VD_EXTRACT_END_DATE,     /* "YYYY-MM-DD" or null */
  VD_EXTRACT_NIGHTS,       /* integer >= 1 or null (multi-city legs summed) */
  VD_EXTRACT_ADULTS,       /* integer or null (18 and over) */
  VD_EXTRACT_CHILDREN,     /* integer or null (under 18) */
  VD_EXTRACT_BUDGET,       /* "low" | "mid" | "high" | null */
  VD_EXTRACT_INTERESTS,    /* sorted unique array from the fixed vocabulary */
  VD_EXTRACT_FIELD_COUNT
} vd_extract_field;

#define VD_EXTRACT_BIT(field) (1u << (unsigned)(field))
#define VD_EXTRACT_ALL_FIELDS ((1u << (unsigned)VD_EXTRACT_FIELD_COUNT) - 1u)

/* "destinations", "start_date", ... ; NULL for an out-of-range value. */
const char *vd_extract_field_name(vd_extract_field field);
/* The field with that JSON key; false if there is none. */
bool vd_extract_field_from_name(const char *name, vd_extract_field *field);

/* The gazetteer: a TSV file, one `alias<TAB>canonical[<TAB>flags]` per line ('#' comments and
 * blank lines allowed). Aliases are matched case- and accent-insensitively on whole words
 * ("Zürich", "zurich", "ZURICH" are one alias). canonical is "City, Country" (plain ASCII) or a
 * country alone, or "-" for a phrase that holds a place name but is no destination ("South
 * America", "Brussels sprouts": the longest alias wins, so these shadow the shorter names). flags:
 * `cap` = the alias is also a common word and matches only when written with a capital first letter
 * ("Nice"), `upper` = only when written in capitals ("LA"). Shipped: examples/triage/gazetteer.tsv.
 * Errors name file:line. */
typedef struct vd_gazetteer vd_gazetteer;
vd_gazetteer *vd_gazetteer_load(const char *path, vd_error *err);
/* As vd_gazetteer_load from text in memory; `name` is used in error messages. */
vd_gazetteer *vd_gazetteer_load_string(const char *text, size_t len, const char *name,
                                       vd_error *err);
void vd_gazetteer_free(vd_gazetteer *gazetteer);
size_t vd_gazetteer_alias_count(const vd_gazetteer *gazetteer);

typedef struct vd_extract_result {
  /* New reference (caller json_decrefs): an object with exactly the eight keys above; null (or
   * [] for destinations/interests) where the rules cannot tell. */
  json_t *fields;
  /* VD_EXTRACT_BIT(field) is set for every field the rules filled with confidence: a value found
   * by an unambiguous rule. A field not set here is null/empty or a weak guess (a fuzzy-matched
   * place name, days read as nights, ...) and is worth asking the LLM for. */
  unsigned confident;
} vd_extract_result;

/* Extracts the trip fields of `text` (UTF-8, len bytes; invalid bytes are read as spaces) against
 * reference_date ("YYYY-MM-DD"). A date without a year is its next occurrence on or after the
 * reference date. Returns false (out->fields NULL) only on bad arguments: NULL text, a malformed
 * reference date. Takes well under 100 microseconds for a request of a few sentences. */
bool vd_extract_rules(const vd_gazetteer *gazetteer, const char *text, size_t len,
                      const char *reference_date, vd_extract_result *out, vd_error *err);

/* The names of the fields NOT in `confident`, as a new JSON array (what to ask the LLM for). */
json_t *vd_extract_missing_fields(unsigned confident);

/* A new object with the eight keys: the rules' value where `confident` has the field, otherwise
 * the LLM's value when llm_fields (may be NULL) has that key, otherwise the rules' value. The LLM
 * values are taken as given: validate them against the task's output schema first. */
json_t *vd_extract_merge(const json_t *rules_fields, unsigned confident, const json_t *llm_fields);

/* Exact match of one field with the golden set's normalisation: interests compared as sorted
 * unique sets, destinations in order, dates as strings, counts as integers, null == null. */
bool vd_extract_field_equal(vd_extract_field field, const json_t *expected, const json_t *actual);

/* Measuring the extractor on a golden file (JSON Lines: id, slice, reference_date, text,
 * expected). */
typedef struct vd_extract_eval vd_extract_eval;
/* Runs the rules on every row. Errors (unreadable file, a bad row) name file:line. */
vd_extract_eval *vd_extract_eval_golden(const vd_gazetteer *gazetteer, const char *golden_path,
                                        vd_error *err);
/* New reference: {"rows", "mean_accuracy", "rows_all_correct", "fields": {name: accuracy},
 * "slices": {slice: {"rows", "accuracy", "fields": {name: accuracy}}},
 * "confident": {"filled", "correct", "precision"}, "us_per_request"}; accuracies in [0, 1]. */
json_t *vd_extract_eval_json(const vd_extract_eval *eval);
/* Prints the per-field and per-slice tables (Markdown) to out. With `failures`, also every
 * mismatching field as "id field: expected X, got Y". */
void vd_extract_eval_print(const vd_extract_eval *eval, FILE *out, bool failures);
void vd_extract_eval_free(vd_extract_eval *eval);

#endif
