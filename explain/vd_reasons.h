/* vd_reasons: the reason codes of one candidate's outcome — the one piece of code that decides
 * what a decision's `reasons` say (the response and the trace both carry its output).
 *
 *   settled by a rule (deny, allow, route)  → that rule's id and text first;
 *   scored and selected (ranked)            → the adjust rules that fired, then the model's
 *                                             strongest contributions by absolute size, either
 * sign; not selected (denied, or capped out)    → the principal reasons AGAINST it: the deciding
 * rule, adjust rules that lowered the score, then the contributions that lowered the expected
 * response. At most VD_REASONS_MAX reasons (the convention of adverse-action notices), strongest
 * first.
 *
 * Each reason: {"code", "kind": "rule"|"model", "text", ...}; rule reasons add "adjust" for adjust
 * rules; model reasons add "feature", "direction" ("up"|"down"), "value" (the request's value,
 * absent for the treatment) and "contribution" (log-odds). Codes: the rule id, or
 * "model:FEATURE:up|down". A feature the manifest gives no text for gets a generated one
 * ("recency (3) raised the expected response"); vd_reasons_missing lists them.
 *
 * Ownership: inputs are borrowed; vd_reasons_missing returns a new jansson reference. Stateless,
 * thread-safe.
 */
#ifndef VD_REASONS_H
#define VD_REASONS_H

#include <jansson.h>
#include <stdbool.h>

#include "vd_json_write.h"
#include "vd_model.h"
#include "vd_ruleset.h"

enum { VD_REASONS_MAX = 4 };

typedef struct vd_reasons_input {
  const vd_ruleset *ruleset;
  const vd_rules_outcome *outcome;
  /* For a candidate the model scored: the model, its feature contributions (a result's
   * vd_model_feature_count() + 1 values, the last the treatment) and the request they were
   * computed on (the texts quote its values); model or contributions NULL when not scored. */
  const vd_model *model;
  const double *contributions;
  const json_t *request;
  bool selected; /* eligible and ranked in the response */
} vd_reasons_input;

/* Writes the reasons array through e (vd_json_write.h: text on the decision's hot path). */
void vd_reasons_write(const vd_reasons_input *in, vd_json_emit *e);
/* The reason texts the manifest lacks: [{"feature", "direction", "generated"}] (a new array;
 * empty when every feature has both texts). */
json_t *vd_reasons_missing(const vd_model *model);

#endif
