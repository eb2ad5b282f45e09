/* vd_trace: the trace — one JSON document per decision, what compliance pulls (DESIGN.md §5).
 *
 * Shape (trace_version 1; explain/trace.schema.json has one shape per kind — this is kind
 * "promotions", the triage record is described in engine/vd_triage_pipeline.h):
 *   {"trace_version": 1, "id": UUIDv7, "kind": "promotions", "timestamp": RFC 3339 (µs, UTC),
 *    "deployment": {"name", "version"} (vd_deployment_version: settings, candidates, versions),
 *    "request": the request as received, configured fields masked (see vd_trace_mask),
 *    "ruleset": {"name", "version"}, "schema": {"name", "version"},
 *    "model": {"name", "version"} | null,
 *    "fallback": null | {"reason": "model_unavailable"|"model_error", "message"},
 *    "candidates": [{
 *        "candidate": ID, "treatment": VALUE | null,
 *        "rules": vd_rules_outcome_to_json (every rule evaluated, matched, values read),
 *        "model": null | vd_model_result_to_json ({"features": {COLUMN: VALUE}, "margin",
 *                  "p_treatment", "p_control", "uplift", "bias", "contributions": {COLUMN: PHI}}),
 *        "reasons": [{"code", "text"}],
 *        "outcome": {"eligible", "action", "score", "rank", "decided_by"}}],
 *    "max_results_cap": the server's cap on results | null (replay applies it again),
 *    "response": the response body as sent,
 *    "timings_us": {"validate", "rules", "model", "total"}}
 *
 * Masking: a masked value is replaced by "hmac-sha256:" and the hex HMAC-SHA-256, under the
 * server's secret key, of the value's compact JSON text. Equal values mask equally (a compliance
 * officer can still find every decision about one customer by masking the id the same way) but
 * the value cannot be read back without the key.
 *
 * Ownership: every function returns new jansson references (json_decref them); inputs are
 * borrowed. Stateless and thread-safe.
 */
#ifndef VD_TRACE_H
#define VD_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"
#include "vd_json_write.h"
#include "vd_model.h"
#include "vd_ruleset.h"

enum { VD_TRACE_VERSION = 1 };

typedef struct vd_trace_mask {
  const unsigned char *key; /* the HMAC key */
  size_t key_size;
  /* Field paths: "subject.id", "context.ip"; "candidate.x" masks x in `candidate` and in every
   * element of `candidates`. */
  const char *const *fields;
  size_t field_count;
} vd_trace_mask;

/* Masking and replay: a masked value cannot be read back, so a field that a rule or the model
 * reads must never be masked — replay would decide on the HMAC instead of the value. verdict
 * refuses such a configuration when a deployment loads: vd_trace_mask_check appends one error
 * per (masked field, reader), naming both ("mask_fields: subject.country is read by rule
 * region-restriction; ..."), and returns false. A mask entry covers the field and everything
 * under it ("subject" masks every subject.* field). model may be NULL. */
bool vd_trace_mask_check(const vd_trace_mask *mask, const vd_ruleset *ruleset,
                         const vd_model *model, vd_diags *diags);

/* A mask entry must name a field (or a section or object holding fields) of at least one of the
 * served schemas: a typo would otherwise leave the value it meant stored in clear. Appends one
 * error per unknown entry, with a did-you-mean when a field is close, and returns false. */
bool vd_trace_mask_known(const vd_trace_mask *mask, const vd_schema *const *schemas, size_t count,
                         vd_diags *diags);

/* A deep copy of request with every configured field masked. mask may be NULL (plain copy). */
json_t *vd_trace_mask_request(const json_t *request, const vd_trace_mask *mask);
/* The masked text of one value ("hmac-sha256:..."). */
json_t *vd_trace_mask_value(const json_t *value, const vd_trace_mask *mask);

typedef struct vd_trace_header {
  const char *id;
  const char *kind;
  int64_t timestamp_us;
  const char *deployment;
  const char *deployment_version;
  const char *ruleset_name, *ruleset_version;
  const char *schema_name, *schema_version;
  const char *model_name, *model_version; /* NULL: no model */
  size_t max_results_cap;                 /* the server's cap on results (0: none), for replay */
  const char *fallback_reason;            /* NULL: no fallback */
  const char *fallback_message;
} vd_trace_header;

/* The trace skeleton: every header field, "request" (masked copy of request), an empty
 * "candidates" array; "response" and "timings_us" are added with vd_trace_finish. */
json_t *vd_trace_begin(const vd_trace_header *header, const json_t *request,
                       const vd_trace_mask *mask);
/* The same trace written through an emitter (vd_json_write.h), for a pipeline that writes its
 * trace as text with no tree: vd_trace_write_head opens the trace object and writes every member
 * before "candidates" (the header fields and the masked "request"); the caller then writes
 * "candidates", vd_trace_write_cap ("max_results_cap"), "response", vd_trace_write_timings
 * ("timings_us") and closes the object — the order above. */
void vd_trace_write_head(vd_json_emit *e, const vd_trace_header *header, const json_t *request,
                         const vd_trace_mask *mask);
void vd_trace_write_cap(vd_json_emit *e, const vd_trace_header *header);
/* The trace's (and response's) small objects: {"name", "version"} (each string or null), and a
 * fallback {"reason", "message"} — null when reason is NULL. */
void vd_trace_write_versioned(vd_json_emit *e, const char *name, const char *version);
void vd_trace_write_fallback(vd_json_emit *e, const char *reason, const char *message);
/* request.subject.id as the trace stores it, for the decision log's subject column: the
 * request's string (borrowed), its "hmac-sha256:..." text (into buf) when subject.id is masked,
 * NULL when it is not a string there (absent, not a string, or the whole subject masked). */
enum { VD_TRACE_MASKED_SIZE = 80 }; /* "hmac-sha256:" + 64 hex digits + NUL fits */
const char *vd_trace_subject_id(const json_t *request, const vd_trace_mask *mask, char *buf,
                                size_t size);
/* What the subject column holds for a subject id a caller asks about (?subject=): the id itself,
 * its "hmac-sha256:..." text (into buf) when subject.id is masked, or subject unchanged when it
 * already is such a text. NULL when no listing by subject can match: the whole subject is
 * masked. */
const char *vd_trace_subject_lookup(const char *subject, const vd_trace_mask *mask, char *buf,
                                    size_t size);
void vd_trace_write_timings(vd_json_emit *e, double validate_us, double rules_us, double model_us,
                            double total_us);
/* Appends one candidate's record (stolen). */
void vd_trace_add_candidate(json_t *trace, json_t *candidate);
/* Adds the response (borrowed: a reference is taken) and the timings in microseconds. */
void vd_trace_finish(json_t *trace, json_t *response, double validate_us, double rules_us,
                     double model_us, double total_us);

/* The differences between two traces of one decision (replay, shadow evaluation), ignoring
 * "timings_us": [{"path": "candidates[1].outcome.action", "before": V, "after": V}] with at
 * most max entries (the count of all differences goes to *total when non-NULL). A missing value
 * is JSON null with "missing": "before"|"after". New array. */
json_t *vd_trace_diff(const json_t *before, const json_t *after, size_t max, size_t *total);

/* The relative tolerance replay allows between two reals: a verdict build whose float rounding
 * differs (e.g. how TreeSHAP weights are tabulated) recomputes contributions that agree to ~1e-8;
 * every decision-bearing value (action, rank, eligibility, rule outcomes, reason codes) is still
 * compared exactly. */
#define VD_TRACE_REAL_TOLERANCE 1e-6

/* What replay lets pass between the stored trace and a re-run by another verdict build, counted
 * instead of reported: reals within `real_tolerance` · max(1, |a|, |b|) of each other (float
 * rounding), and with `reason_wording` a reason's "text" (how a reason is worded may change
 * between builds; its "code", like every decision-bearing value, is still compared exactly). */
typedef struct vd_trace_leeway {
  double real_tolerance;
  bool reason_wording;
  size_t rounded, reworded; /* out: how many reals and reason texts passed */
} vd_trace_leeway;

/* vd_trace_diff with leeway (its counts are set). */
json_t *vd_trace_diff_within(const json_t *before, const json_t *after, vd_trace_leeway *leeway,
                             size_t max, size_t *total);

/* What replay compares: a copy of trace without what is not part of the decision itself —
 * "timings_us", "amendments" (later facts, such as an LLM classification, stored beside the
 * decision) and the outcome of handing an escalation to the LLM layer ("job_id", "error" in
 * "escalation" and "response.escalation": the job's id is per run and the submission depends on
 * the queue, not on the request); the requested task stays. New reference. */
json_t *vd_trace_decision_view(const json_t *trace);

#endif
