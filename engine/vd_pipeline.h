/* vd_pipeline: one promotion decision, independent of HTTP (the server and `verdict score` both
 * call it). DESIGN.md §1:
 *
 *   validate the request against the schema (every violation, with its JSON path)
 *   → per candidate: rules before_model; settled (deny/allow/route) candidates skip the model
 *   → the model for the candidates still open (p_treatment, p_control, uplift, margin, exact
 *     contributions); no model, a model error, or the deployment's model_budget_us spent →
 *     rules-only fallback with the rule file's default_score, and the response says `fallback`
 *   → rules after_model on score.* (only for model-scored candidates)
 *   → combine: score = (uplift, or default_score when not model-scored) + the sum of adjust
 *   → rank the eligible candidates by score (highest first, ties in candidate order), keep the
 *     top max_results (the smallest of the deployment's, the server cap and the request's),
 *     then list the ineligible ones (rank null)
 *   → response and trace.
 *
 * Candidates: a request's `candidates` name deployment candidates by id ({"id": "mens-email"});
 * fields the request gives override the deployment's. A request without `candidates` is scored
 * against every candidate of the deployment. An unknown id is a violation (400).
 *
 * Response: {"decision_id", "results": [{"candidate", "eligible", "score", "rank", "action",
 * "reasons": [{"code", "text"}], "model": {p_treatment, p_control, uplift, margin} (model-scored
 * only)}], "ruleset": {"name", "version"}, "model": {"name", "version"} | null,
 * "fallback": null | {"reason", "message"}}. Actions: "deny" (a rule denied it), "allow" (a rule
 * allowed it before the model), "route", "offer" (scored: eligible and ranked), and "capped"
 * never appears in the response (capped candidates are only in the trace).
 * With "explain": "full", each result also carries "explanation": the trace's candidate record.
 *
 * Thread-safe: any number of threads may decide on one deployment at once.
 * Ownership: vd_decision's text and json values belong to the caller (vd_decision_clear); its
 * subject_id may borrow from the request, so keep the request until the decision is used.
 */
#ifndef VD_PIPELINE_H
#define VD_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_deployment.h"
#include "vd_error.h"
#include "vd_metrics.h"
#include "vd_trace.h"

typedef struct vd_pipeline_input {
  const json_t *request;     /* the request body as received (borrowed) */
  const char *decision_id;   /* required: e.g. a UUIDv7 from common/vd_uuid.h */
  int64_t now_us;            /* decision time (Unix µs); 0 = the wall clock now */
  size_t max_results;        /* a server-wide cap; 0 = none */
  const vd_trace_mask *mask; /* fields masked in the trace; NULL = none */
  vd_metrics *metrics;       /* counts decisions by action, rules fired, fallbacks; may be NULL */
  /* true: only the text (trace_text) is made, no trees — what the server stores and sends */
  bool text_only;
} vd_pipeline_input;

typedef struct vd_decision {
  /* The trace (vd_trace.h) as compact JSON text (NUL-terminated, shortest round-trip reals),
   * written straight from the pipeline's state; the response body is the bytes
   * [response_start, response_start + response_len) inside it (trace.response). */
  char *trace_text;
  size_t trace_len, response_start, response_len;
  /* The same as trees (trace_text parsed; response is trace.response), or NULL with
   * vd_pipeline_input.text_only. */
  json_t *response;
  json_t *trace;
  /* For the decision log's indexed columns: subject.id as the trace stores it (borrowed from the
   * request, or masked_subject_id), or NULL; the versions borrowed from the deployment. */
  const char *subject_id;
  char masked_subject_id[VD_TRACE_MASKED_SIZE];
  const char *ruleset_version;
  const char *model_version; /* NULL: no model */
} vd_decision;

typedef enum vd_pipeline_status {
  VD_PIPELINE_OK,
  VD_PIPELINE_INVALID, /* the request broke the schema: every violation is in `violations` */
  VD_PIPELINE_ERROR,   /* an internal failure (err says what): 500 */
} vd_pipeline_status;

vd_pipeline_status vd_pipeline_decide(const vd_deployment *deployment,
                                      const vd_pipeline_input *input, vd_decision *out,
                                      vd_diags *violations, vd_error *err);
void vd_decision_clear(vd_decision *decision);

#endif
