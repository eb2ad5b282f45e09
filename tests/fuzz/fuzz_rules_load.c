/* Fuzzes the rule-file and schema loaders from bytes, and then validation and evaluation.
 *
 * Input: RULES [NUL REQUEST_JSON]. The rule text is loaded as a schema and as a rule file (whose
 * schema is usually inline; a `schema:` path resolves against a directory that does not exist,
 * so no real file is read). When the ruleset loads and a request follows, the request is
 * validated against its schema and, when valid, every rule of both stages is evaluated for each
 * candidate and the outcome turned into trace JSON. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vd_ruleset.h"
#include "vd_schema.h"

static void evaluate(const vd_ruleset *rs, const json_t *request) {
  vd_diags diags = {0};
  json_t *normal = vd_schema_validate_at(vd_ruleset_schema(rs), request, 0, &diags);
  vd_diags_free(&diags);
  if (!normal) return;
  vd_rules_frame *frame = vd_rules_frame_new(rs);
  vd_rules_outcome *outcome = vd_rules_outcome_new(rs);
  vd_error err;
  if (frame && outcome && vd_rules_frame_bind_request(frame, normal, &err)) {
    json_t *candidates = json_object_get(normal, "candidates");
    json_t *one = json_object_get(normal, "candidate");
    size_t n = json_is_array(candidates) ? json_array_size(candidates) : 0;
    for (size_t i = 0; i <= n; i++) {
      const json_t *candidate = i < n ? json_array_get(candidates, i) : one;
      if (!vd_rules_frame_bind_candidate(frame, candidate, &err)) continue;
      vd_rules_outcome_reset(outcome);
      vd_ruleset_eval_stage(rs, frame, VD_STAGE_BEFORE_MODEL, outcome, &err);
      vd_rules_scores scores = {.uplift = 0.01, .value = 0.01, .intent = "x"};
      vd_rules_frame_bind_scores(frame, &scores);
      vd_ruleset_eval_stage(rs, frame, VD_STAGE_AFTER_MODEL, outcome, &err);
      json_decref(vd_rules_outcome_to_json(outcome));
    }
  }
  vd_rules_outcome_free(outcome);
  vd_rules_frame_free(frame);
  json_decref(normal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  const char *nul = memchr(data, '\0', size);
  size_t rules_size = nul ? (size_t)(nul - text) : size;
  vd_diags diags = {0};
  vd_schema_free(vd_schema_load_string(text, rules_size, "fuzz.yaml", &diags));
  vd_diags_free(&diags);
  vd_ruleset *rs =
      vd_ruleset_load_string(text, rules_size, "fuzz.yaml", "/nonexistent-fuzz-dir", 0, &diags);
  vd_diags_free(&diags);
  if (rs && nul) {
    json_error_t jerr;
    json_t *request = json_loadb(nul + 1, size - rules_size - 1, JSON_DECODE_ANY, &jerr);
    if (request) evaluate(rs, request);
    json_decref(request);
  }
  if (rs) {
    /* the canonical form loads back */
    const char *canonical = vd_ruleset_canonical(rs);
    vd_ruleset_free(vd_ruleset_load_string(canonical, strlen(canonical), "canonical.json", NULL,
                                           VD_RULESET_SKIP_TESTS, NULL));
  }
  vd_ruleset_free(rs);
  return 0;
}
