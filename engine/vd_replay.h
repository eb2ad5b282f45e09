/* vd_replay: re-deciding logged decisions — exact replay on the stored versions (`verdict
 * replay`), readable explanations from the log (`verdict explain`) and what-if evaluation of a
 * candidate rule file / model on logged traffic (`verdict shadow`, engine/vd_shadow.c).
 *
 * A trace names its deployment version (vd_deployment_version); the data folder keeps that
 * version's settings and candidates, its ruleset and its model content-addressed
 * (DATA_DIR/deployments|rulesets|models/<version>/), so vd_replayer rebuilds exactly what decided
 * and runs the stored request through the same pipeline (vd_pipeline_decide) with the same
 * decision id, the same decision time (`now`), the same server cap on results and no masking
 * (the stored request is already masked). No rule or model reads a masked field
 * (vd_trace_mask_check refuses that), so a masked value is replaced by a stand-in the schema
 * accepts (decisions cannot depend on it) and the replayed trace gets the stored request back.
 * A decision whose model ran out of its time budget (fallback "model_budget_exceeded") depends
 * on timing and may replay differently; the difference is then reported like any other.
 *
 * Triage decisions: the hot path — rules, the text model, route, priority, handled_by and the
 * escalation task asked for — is re-run by vd_triage_decide on the stored text exactly as it
 * was featurised (already masked: it is never masked again, see vd_triage_pipeline.h) with the
 * stored gazetteer version (DATA_DIR/gazetteers/<version>/) for itinerary escalations. Nothing
 * is submitted to the LLM layer. What a run cannot re-create is not compared
 * (vd_trace_decision_view): the escalation's job id and submission error, and the amendments
 * (the LLM's later classification), which the replay verb shows as such. "cards_masked" is
 * carried over from the stored trace: the raw text it counts is never stored.
 *
 * Ownership: vd_replayer_new returns a replayer the caller frees (it caches the deployment
 * versions it rebuilt); returned traces and difference lists are new jansson references.
 * Not thread-safe (one replayer per thread).
 */
#ifndef VD_REPLAY_H
#define VD_REPLAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vd_decision_log.h"
#include "vd_deployment.h"
#include "vd_error.h"

/* The decision log a tool reads: with config_path, the config's data_dir and decision_log.path;
 * else DATA_DIR/decisions.db. data_dir_out gets the data folder. Refuses a log file that does not
 * exist (a tool never creates an empty one). */
vd_decision_log *vd_replay_open_log(const char *data_dir, const char *config_path,
                                    char *data_dir_out, size_t size, vd_error *err);
/* An RFC 3339 time ("2026-12-03T13:00:00Z") → Unix µs; false with err naming name (the field or
 * option the text came from: err->field and the message) when text is not one. */
bool vd_replay_parse_time(const char *name, const char *text, int64_t *us, vd_error *err);

typedef struct vd_replayer vd_replayer;
/* Re-decides a stored trace on deployment d (of the trace's kind; the candidate version, for
 * shadow evaluation), taking stored auxiliary versions (the gazetteer) from r's data folder:
 * the new trace, or NULL + err (e.g. the stored request no longer validates). */
json_t *vd_replayer_decide_on(vd_replayer *r, const vd_deployment *d, const json_t *trace,
                              vd_error *err);

vd_replayer *vd_replayer_new(const char *data_dir);
void vd_replayer_free(vd_replayer *r);
/* Re-decides a stored trace on the versions it names: the new trace, or NULL + err (a version
 * missing from the store...). */
json_t *vd_replayer_decide(vd_replayer *r, const json_t *trace, vd_error *err);

#endif
