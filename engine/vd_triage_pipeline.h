/* vd_triage_pipeline: one triage decision (POST /v1/triage), independent of HTTP and of the LLM
 * layer (the service submits the escalation it names). DESIGN.md §1:
 *
 *   mask payment card numbers in the text (common/vd_pan.h) — nothing downstream, not the
 *     rules, the model, the trace, the decision log or the LLM, ever sees the full number
 *   → map {text, channel, subject} onto the schema (context.text, context.channel, subject.*)
 *     and validate (violations name the API field: "text", "channel", "subject.id")
 *   → rules before_model (phrases that must route a certain way: a route settles the request,
 *     handled_by "rules", the model is skipped)
 *   → the text model (models/vd_triage.h): the top-3 calibrated intents with the token
 *     contributions; score.intent, score.confidence, score.margin and score.value (confidence
 *     minus the model's escalation threshold) for after_model rules
 *   → rules after_model: route, priority, escalate
 *   → defaults: no route → "human_review", no priority → "normal". Without a model (fallback)
 *     the after_model rules cannot run, so an unsettled request goes to "human_review" with a
 *     `classify` escalation (the LLM layer classifies it instead).
 *   → handled_by: "rules" (settled before the model), "llm_pending" (a classify escalation: the
 *     route is provisional until the job's answer is stored on the decision), else "model".
 *
 * Escalation: the decision names the task and its input (out->escalate, out->escalation_input);
 * the caller submits it (vd_llm_submit, never awaited) and records what happened with
 * vd_triage_record_escalation, which fills the response's and the trace's `escalation`.
 * Inputs: classify {text, channel, provisional {intent, route, confidence}, routes (every route
 * the rule file can set)}; extract {text, reference_date}; itinerary {destination, start_date,
 * end_date, travelers?, interests?} from the rules extractor (llm/vd_extract_rules.h) — when the
 * text lacks a destination or dates an itinerary cannot be asked for yet, so the escalation is
 * an `extract` job instead and the trace says why (escalation.note).
 *
 * Response: {"decision_id", "intent", "confidence", "top": [{intent, probability}] (3),
 * "route", "priority", "handled_by", "escalation": null | {"job_id", "task"} (or {"job_id":
 * null, "task", "error"} when the submission failed), "ruleset": {name, version}, "model":
 * {name, version} | null, "fallback": null | {reason, message}}. intent and confidence are null
 * when the rules decided before the model (or in fallback).
 *
 * Trace (explain/trace.schema.json, kind "triage"): vd_trace.h's header; "gazetteer": null |
 * {"version"} (the places file itinerary escalations were checked against); one candidate
 * record ("request") with the rules (every rule with the values it read), "model":
 * vd_triage_result_to_json (top intents, margin, bias, token and feature contributions) | null,
 * "outcome" {route, priority, escalate, handled_by} and "cards_masked"; "escalation": null |
 * {job_id, task, error?} (vd_triage_record_escalation), "escalation_note" when an itinerary
 * became an extract; "request" is the body as received with the text masked — exactly the text
 * the rules and the model read.
 *
 * Replay (engine/vd_replay.h): with text_masked the request's text is used as given, never
 * masked again — masking is not idempotent ("****1111 1234 5678 9012" may hold a new
 * Luhn-valid run once the first card is masked) — and cards_masked is taken as stored (the raw
 * text, and so the count, is never kept). No LLM job is submitted by this function in any case.
 *
 * Thread-safe: any number of threads may decide on one deployment at once.
 * Ownership: every json_t in vd_triage_decision belongs to it (vd_triage_decision_clear); the
 * borrowed strings live as long as the deployment version.
 */
#ifndef VD_TRIAGE_PIPELINE_H
#define VD_TRIAGE_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vd_deployment.h"
#include "vd_error.h"
#include "vd_extract_rules.h"
#include "vd_hash.h"
#include "vd_pipeline.h"
#include "vd_trace.h"

typedef struct vd_triage_input {
  const json_t *request;         /* {text, channel?, subject?} as received (borrowed) */
  const char *decision_id;       /* required */
  int64_t now_us;                /* 0 = now */
  const vd_trace_mask *mask;     /* configured masked fields; NULL = none */
  const vd_gazetteer *gazetteer; /* for itinerary escalations; NULL: they become extract */
  const char *gazetteer_version; /* its SHA-256 (vd_triage_gazetteer_open), for the trace */
  bool text_masked;              /* replay: the text is the stored, already masked one */
  size_t cards_masked;           /* with text_masked: the stored count */
} vd_triage_input;

typedef struct vd_triage_decision {
  json_t *response;
  json_t *trace;
  const char *subject_id; /* borrowed from the trace (masked when configured), or NULL */
  const char *ruleset_version;
  const char *model_version; /* NULL: no model */
  const char *escalate;      /* "classify" | "extract" | "itinerary" | NULL: nothing to submit */
  json_t *escalation_input;  /* the task's input, NULL when escalate is NULL */
  size_t cards_masked;       /* payment card numbers removed from the text */
} vd_triage_decision;

vd_pipeline_status vd_triage_decide(const vd_deployment *deployment, const vd_triage_input *input,
                                    vd_triage_decision *out, vd_diags *violations, vd_error *err);
/* Records the escalation: job_id set = submitted (or answered from the cache); NULL with error =
 * not submitted (queue full, rejected), which the response and trace show. */
void vd_triage_record_escalation(vd_triage_decision *decision, const char *job_id,
                                 const char *error);
void vd_triage_decision_clear(vd_triage_decision *decision);

/* The gazetteer file read once: its SHA-256 into version, its bytes stored content-addressed
 * (DATA_DIR/gazetteers/<version>/gazetteer.tsv, when data_dir is not NULL) so a replay checks
 * itinerary escalations against the same places, and the gazetteer loaded from those bytes.
 * NULL + err when it cannot be read, stored or parsed. The caller frees it (vd_gazetteer_free). */
vd_gazetteer *vd_triage_gazetteer_open(const char *path, const char *data_dir,
                                       char version[VD_SHA256_HEX_SIZE], vd_error *err);
/* A stored gazetteer version (see above), or NULL + err. */
vd_gazetteer *vd_triage_gazetteer_stored(const char *data_dir, const char *version, vd_error *err);

#endif
