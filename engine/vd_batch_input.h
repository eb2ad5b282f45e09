/* vd_batch_input: the input side of `verdict score` — a file of requests, read row by row into
 * POST /v1/promotions/score request bodies, each with its line number.
 *
 * JSON Lines: every non-blank line is one request body (a JSON object), passed on unchanged.
 * CSV (RFC 4180, first line = header): every row becomes {"subject": {...}, "context": {...}}
 * without `candidates`, so the pipeline scores it against every candidate of the deployment.
 * Which field a column fills (README "Batch scoring"):
 *   1. the mapping's `columns:` entry for the column, if any (column → field path);
 *   2. else a header that is itself a field path of the schema (`subject.recency`, `context.now`);
 *   3. else `subject.<header>` when the schema declares it (the Hillstrom columns);
 *   4. else the column must be listed under the mapping's `ignore:` — any other column is an
 *      error at the header (file:1:col), so a misspelt column never goes silently unused.
 * Cells are converted by the schema type of their field: bool accepts 1/0/true/false (any case),
 * int and double must be whole numbers (no spaces), strings/enums/timestamps are taken as they
 * are, list<T> cells are elements separated by `|`; an empty cell leaves the field out (the
 * schema's default or required-check applies). The mapping's `constants:` give fields the file
 * does not have (the same value for every row); a column for the same field wins. When no column
 * or constant gives subject.id and the schema declares it, each row's subject.id is
 * "line-<N>". CSV columns may only fill subject.* and context.* fields.
 *
 * Mapping file (YAML, optional; `verdict score` reads DEPLOYMENT/batch.yaml when present):
 *     csv:
 *       columns:   { customer: subject.id }
 *       constants: { subject.country: US, subject.emails_last_30d: 0 }
 *       ignore:    [segment, visit, conversion, spend]
 *
 * A row that cannot become a request (bad cell, wrong number of cells, bad JSON) is a REJECT
 * with every problem in diags (field path, and "file:line"); reading goes on with the next row.
 * A broken file (unreadable, a CSV quote never closed) is FATAL.
 *
 * Ownership: mappings and readers are freed by their _free/_close; the reader borrows the schema
 * and the mapping (both must outlive it); requests handed out are new references.
 */
#ifndef VD_BATCH_INPUT_H
#define VD_BATCH_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"
#include "vd_schema.h"

typedef enum vd_batch_format {
  VD_BATCH_AUTO, /* by extension: .csv is CSV, .jsonl/.ndjson/.json JSON Lines; else sniffed */
  VD_BATCH_CSV,
  VD_BATCH_JSONL,
} vd_batch_format;

/* "csv" or "jsonl" (or "auto"). */
const char *vd_batch_format_name(vd_batch_format format);
/* Parses "csv", "jsonl" or "auto"; false for anything else. */
bool vd_batch_format_parse(const char *name, vd_batch_format *format);

typedef struct vd_batch_mapping vd_batch_mapping;

/* An empty mapping (path NULL) or one loaded from a YAML file; NULL with err (file:line:col). */
vd_batch_mapping *vd_batch_mapping_load(const char *path, vd_error *err);
/* Adds a constant from the command line, "subject.country=US"; the value is converted by the
 * field's schema type when the reader opens. False for text without '=' or an empty field. */
bool vd_batch_mapping_set(vd_batch_mapping *mapping, const char *assignment, vd_error *err);
void vd_batch_mapping_free(vd_batch_mapping *mapping);

typedef struct vd_batch_reader vd_batch_reader;

/* Opens the input; for CSV reads the header and resolves every column against the schema and
 * mapping (errors name file:1:column). */
vd_batch_reader *vd_batch_reader_open(const char *path, vd_batch_format format,
                                      const vd_schema *schema, const vd_batch_mapping *mapping,
                                      vd_error *err);

typedef enum vd_batch_next {
  VD_BATCH_ROW,    /* *request is set */
  VD_BATCH_REJECT, /* the row's problems are in diags; go on */
  VD_BATCH_END,
  VD_BATCH_FATAL, /* err says why; stop */
} vd_batch_next;

/* The next row: *line gets its 1-based input line (for CSV the header is line 1). */
vd_batch_next vd_batch_reader_next(vd_batch_reader *reader, json_t **request, size_t *line,
                                   vd_diags *diags, vd_error *err);
vd_batch_format vd_batch_reader_format(const vd_batch_reader *reader);
/* Fraction of the input read so far, 0..1 (for the progress bar). */
double vd_batch_reader_progress(const vd_batch_reader *reader);
/* CSV columns that fill no field (listed under `ignore:`), for the summary. */
size_t vd_batch_reader_ignored_count(const vd_batch_reader *reader);
const char *vd_batch_reader_ignored(const vd_batch_reader *reader, size_t index);
/* "column → field" of every used CSV column, for the summary (borrowed, JSON object). */
const json_t *vd_batch_reader_columns(const vd_batch_reader *reader);
void vd_batch_reader_close(vd_batch_reader *reader);

#endif
