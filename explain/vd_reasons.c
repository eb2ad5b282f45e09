#include "vd_reasons.h"

#include <string.h>

static size_t rule_index(const vd_ruleset *rs, const char *id) {
  size_t n = vd_ruleset_rule_count(rs);
  for (size_t i = 0; i < n; i++)
    if (strcmp(vd_ruleset_rule_id(rs, i), id) == 0) return i;
  return n;
}

static bool full(const json_t *reasons) { return json_array_size(reasons) >= VD_REASONS_MAX; }

/* Adjust rules that fired; against = only the ones that lowered the score. */
static void add_adjust_rules(const vd_reasons_input *in, bool against, json_t *reasons) {
  enum { MAX_FIRED = 256 };
  const char *fired[MAX_FIRED];
  size_t n = vd_rules_outcome_fired(in->outcome, fired, MAX_FIRED);
  for (size_t i = 0; i < n && i < MAX_FIRED && !full(reasons); i++) {
    size_t r = rule_index(in->ruleset, fired[i]);
    if (r == vd_ruleset_rule_count(in->ruleset) ||
        vd_ruleset_rule_action(in->ruleset, r) != VD_ACTION_ADJUST)
      continue;
    double adjust = json_number_value(vd_ruleset_rule_argument(in->ruleset, r));
    if (against && adjust >= 0) continue;
    const char *description = vd_ruleset_rule_description(in->ruleset, r);
    json_array_append_new(
        reasons, json_pack("{s:s, s:s, s:s, s:f}", "code", fired[i], "kind", "rule", "text",
                           description && *description ? description : fired[i], "adjust", adjust));
  }
}

static void add_model_reasons(const vd_reasons_input *in, bool against, json_t *reasons) {
  size_t i;
  json_t *r;
  json_array_foreach(in->model_reasons, i, r) {
    if (full(reasons)) break;
    const char *feature = json_string_value(json_object_get(r, "feature"));
    const char *direction = json_string_value(json_object_get(r, "direction"));
    if (!feature || !direction) continue;
    if (against && strcmp(direction, "down") != 0) continue;
    char code[256];
    snprintf(code, sizeof code, "model:%s:%s", feature, direction);
    json_t *reason = json_pack("{s:s, s:s, s:O, s:s, s:s, s:O}", "code", code, "kind", "model",
                               "text", json_object_get(r, "text"), "feature", feature, "direction",
                               direction, "contribution", json_object_get(r, "contribution"));
    const json_t *value = json_object_get(r, "value");
    if (value) json_object_set(reason, "value", (json_t *)value);
    json_array_append_new(reasons, reason);
  }
}

json_t *vd_reasons_build(const vd_reasons_input *in) {
  json_t *reasons = json_array();
  const char *by = vd_rules_outcome_decided_by(in->outcome);
  if (by) {
    const char *text = vd_rules_outcome_reason(in->outcome);
    json_array_append_new(reasons, json_pack("{s:s, s:s, s:s}", "code", by, "kind", "rule", "text",
                                             text && *text ? text : by));
  }
  bool against = !in->selected;
  add_adjust_rules(in, against, reasons);
  add_model_reasons(in, against, reasons);
  return reasons;
}

json_t *vd_reasons_missing(const vd_model *model) {
  json_t *missing = json_array();
  const json_t *texts = json_object_get(vd_model_manifest(model), "reasons");
  size_t n = vd_model_feature_count(model);
  for (size_t f = 0; f <= n; f++) {
    const char *name = f == n ? "treatment" : vd_model_feature_name(model, f);
    for (int up = 1; up >= 0; up--) {
      const char *direction = up ? "up" : "down";
      if (json_is_string(json_object_get(json_object_get(texts, name), direction))) continue;
      char generated[512];
      vd_model_reason_text(model, f, up, NULL, generated, sizeof generated);
      json_array_append_new(missing, json_pack("{s:s, s:s, s:s}", "feature", name, "direction",
                                               direction, "generated", generated));
    }
  }
  return missing;
}
