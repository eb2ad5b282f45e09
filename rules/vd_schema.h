/* vd_schema: the request schema (schema.yaml) — every field a rule or a model may read, with its
 * type, bounds and default — and request validation against it.
 *
 * File format (see README "Schemas"):
 *
 *   schema: promotions                 # name
 *   fields:
 *     subject.id:        { type: string, required: true }
 *     subject.recency:   { type: int, min: 1, max: 12, required: true }
 *     subject.zip_code:  { type: enum, values: [Urban, Surburban, Rural] }
 *     subject.marketing_opt_out: { type: bool, default: false }
 *     subject.tags:      { type: "list<string>", max_items: 20 }
 *     context.now:       { type: timestamp, default: now }
 *
 * Field paths start with `subject.`, `candidate.` or `context.` followed by one or more
 * identifiers. Types: bool, int (64-bit), double, string, enum (string from `values`),
 * list<T> (T any non-list type), timestamp (RFC 3339 string in JSON). Keys per field: type
 * (required), description, required (bool, default false), default, min/max (int, double),
 * max_length (string), values (enum), max_items (list). `score.*` is reserved (the model's
 * outputs).
 *
 * Ownership: vd_schema_load* returns a schema with one reference; vd_schema_retain adds one,
 * vd_schema_free drops one and frees at zero (thread-safe counting). A loaded schema is immutable
 * and may be shared by any number of threads. Field handles are borrowed from their schema.
 */
#ifndef VD_SCHEMA_H
#define VD_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

typedef struct vd_schema vd_schema;
typedef struct vd_schema_field vd_schema_field;

typedef enum vd_field_type {
  VD_FIELD_BOOL,
  VD_FIELD_INT,
  VD_FIELD_DOUBLE,
  VD_FIELD_STRING,
  VD_FIELD_ENUM,
  VD_FIELD_LIST,
  VD_FIELD_TIMESTAMP,
} vd_field_type;

/* The request sections a field can live in. */
typedef enum vd_field_section {
  VD_SECTION_SUBJECT,
  VD_SECTION_CANDIDATE,
  VD_SECTION_CONTEXT,
} vd_field_section;

/* Loads a schema file. On failure returns NULL and appends every mistake (file:line:col) to
 * diags (which may be NULL). */
vd_schema *vd_schema_load(const char *path, vd_diags *diags);
/* The same from text; `name` is the file name used in positions. */
vd_schema *vd_schema_load_string(const char *text, size_t len, const char *name, vd_diags *diags);
/* From an already-parsed YAML document's value (used for rule files whose `schema:` is inline).
 * doc may be NULL (positions then unknown); `value` is the schema mapping. */
struct vd_yaml_doc;
vd_schema *vd_schema_from_yaml(const struct vd_yaml_doc *doc, const json_t *value, vd_diags *diags);
vd_schema *vd_schema_retain(vd_schema *schema);
void vd_schema_free(vd_schema *schema);

/* The schema's `schema:` name. */
const char *vd_schema_name(const vd_schema *schema);
/* SHA-256 (hex) of the schema's canonical form (reformatting and comments do not change it). */
const char *vd_schema_version(const vd_schema *schema);
/* The canonical form: compact JSON, keys sorted (borrowed). Loading it back gives the same schema.
 */
const json_t *vd_schema_canonical(const vd_schema *schema);

/* Fields, in file order. */
size_t vd_schema_field_count(const vd_schema *schema);
const vd_schema_field *vd_schema_field_at(const vd_schema *schema, size_t index);
/* Looks a field up by its full path ("subject.recency"); NULL when absent. */
const vd_schema_field *vd_schema_find(const vd_schema *schema, const char *path);

const char *vd_schema_field_path(const vd_schema_field *field); /* "subject.recency" */
size_t vd_schema_field_index(const vd_schema_field *field);     /* position in file order */
vd_field_section vd_schema_field_section(const vd_schema_field *field);
/* The path inside its section ("recency", or "address.country"). */
const char *vd_schema_field_name(const vd_schema_field *field);
vd_field_type vd_schema_field_type(const vd_schema_field *field);
/* For lists: the element type (never VD_FIELD_LIST); otherwise the field's own type. */
vd_field_type vd_schema_field_element_type(const vd_schema_field *field);
/* The type as written: "int", "enum", "list<string>". */
const char *vd_schema_field_type_name(const vd_schema_field *field);
const char *vd_schema_field_description(const vd_schema_field *field); /* "" when none */
bool vd_schema_field_required(const vd_schema_field *field);
/* The default (borrowed JSON), or NULL when the field has none. For a timestamp field whose
 * default is `now`, this is the string "now" and validation fills the current time. */
const json_t *vd_schema_field_default(const vd_schema_field *field);
/* Numeric bounds for int and double fields (also applied to list<int>/list<double> elements).
 * False when the field has no such bound. */
bool vd_schema_field_min(const vd_schema_field *field, double *min);
bool vd_schema_field_max(const vd_schema_field *field, double *max);
/* Enum values (also for list<enum>), in file order. */
size_t vd_schema_field_enum_count(const vd_schema_field *field);
const char *vd_schema_field_enum_value(const vd_schema_field *field, size_t index);

/* The field's value inside a NORMALISED request (subject.* and context.* fields) or candidate
 * object (candidate.* fields; pass the candidate itself). Borrowed; NULL when absent. */
const json_t *vd_schema_field_get(const vd_schema_field *field, const json_t *request_or_candidate);

/* Validates a request and returns a NEW normalised copy (caller json_decref()s), or NULL with
 * EVERY violation appended to diags, each with its JSON path in vd_error.field and why in
 * vd_error.message:  subject.recency: expected int in [1, 12], got "six"
 *
 * The schema governs the sections "subject", "context", "candidate" (one object) and
 * "candidates" (an array of candidate objects; paths "candidates[1].id"). Other top-level keys
 * (explain, text, ...) belong to the API and are copied unchanged. Inside a section:
 *   - a key the schema does not declare is REJECTED ("unknown field", with a suggestion), so a
 *     typo such as `marketing_optout` can never silently fall back to a default;
 *   - a missing or null field takes its default; a missing required field without default is
 *     an error; an optional field without default stays absent (rules reading it get an error,
 *     see README "Rule files" — test with has());
 *   - an int field accepts a JSON integer, or a real with an integral value (3.0 → 3); a double
 *     field accepts integers and reals (stored as reals); strings are never converted to numbers;
 *   - timestamps must be RFC 3339 (`2026-12-03T13:26:45Z`, offsets allowed).
 * `now_us` (microseconds since the epoch) fills `default: now`; vd_schema_validate uses the
 * wall clock. The normalised copy is what rules, models and the trace see. */
json_t *vd_schema_validate(const vd_schema *schema, const json_t *request, vd_diags *diags);
json_t *vd_schema_validate_at(const vd_schema *schema, const json_t *request, int64_t now_us,
                              vd_diags *diags);

#endif
