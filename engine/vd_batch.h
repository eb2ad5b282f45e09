/* vd_batch: `verdict score` — batch scoring of a file through the server's decision pipeline
 * (vd_pipeline.h: the same validation, rules, model and after-model rules), for the promotion
 * team's campaigns.
 *
 *   verdict score --deployment DIR --in FILE [--out FILE.jsonl] [--format auto|csv|jsonl]
 *                 [--map FILE] [--set FIELD=VALUE]... [--log-dir DATA_DIR] [--no-progress]
 *
 * Input: see vd_batch_input.h (JSON Lines of request bodies, or CSV mapped by the schema and
 * DIR/batch.yaml). Output: one JSON line per input row, in input order: the API response body
 * with "line" (the input line number; a CSV header is line 1) first, or for a row that cannot be
 * decided {"line": N, "error": {"code": "invalid_request", "message", "field", "violations":
 * [{"field", "message"}]}} — the API's 400 body. With --log-dir every decision is also stored in
 * DATA_DIR/decisions.db (the server's decision log) before its line is written. A progress bar
 * goes to stderr when it is a terminal; the summary (rows, decisions by action, fallbacks, rows
 * rejected by reason) goes to stdout, or to stderr when the results go to stdout.
 * Exit status: 0 when every row was decided, 1 when some rows were rejected, 2 on bad usage or a
 * file that cannot be read.
 *
 * The summary is a module of its own so that it can be tested without a deployment.
 * Ownership: vd_batch_summary_new → vd_batch_summary_free; JSON results are new references.
 */
#ifndef VD_BATCH_H
#define VD_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"

typedef struct vd_batch_summary vd_batch_summary;

vd_batch_summary *vd_batch_summary_new(void);
void vd_batch_summary_free(vd_batch_summary *s);
/* A decided row: counts each result by its action, and the fallback reason if any. */
void vd_batch_summary_decided(vd_batch_summary *s, const json_t *response);
/* A rejected row: counts it once under each distinct reason (field and message, with the
 * offending value — the text from ", got" on — left out so that like reasons group). */
void vd_batch_summary_rejected(vd_batch_summary *s, size_t line, const vd_diags *problems);
/* {"rows", "decided", "rejected", "actions": {action: results}, "fallbacks": {reason: rows},
 *  "reject_reasons": [{"reason", "rows", "first_line"}] (most rows first)} */
json_t *vd_batch_summary_json(const vd_batch_summary *s);
/* The human-readable summary. */
void vd_batch_summary_print(const vd_batch_summary *s, FILE *f);

/* The output line of a rejected row (the API's 400 body with "line"). */
json_t *vd_batch_reject_json(size_t line, const vd_diags *problems);

/* The verb. */
int vd_verb_score(int argc, char **argv, FILE *out, FILE *err);

#endif
