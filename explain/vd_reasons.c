#include "vd_reasons.h"

#include <string.h>

#include "vd_json_path.h"
#include "vd_text.h"

static size_t rule_index(const vd_ruleset *rs, const char *id) {
  size_t n = vd_ruleset_rule_count(rs);
  for (size_t i = 0; i < n; i++)
    if (strcmp(vd_ruleset_rule_id(rs, i), id) == 0) return i;
  return n;
}

/* Adjust rules that fired; against = only the ones that lowered the score. */
static size_t write_adjust_rules(const vd_reasons_input *in, bool against, size_t written,
                                 vd_json_emit *e) {
  enum { MAX_FIRED = 256 };
  const char *fired[MAX_FIRED];
  size_t n = vd_rules_outcome_fired(in->outcome, fired, MAX_FIRED);
  for (size_t i = 0; i < n && i < MAX_FIRED && written < VD_REASONS_MAX; i++) {
    size_t r = rule_index(in->ruleset, fired[i]);
    if (r == vd_ruleset_rule_count(in->ruleset) ||
        vd_ruleset_rule_action(in->ruleset, r) != VD_ACTION_ADJUST)
      continue;
    double adjust = json_number_value(vd_ruleset_rule_argument(in->ruleset, r));
    if (against && adjust >= 0) continue;
    const char *description = vd_ruleset_rule_description(in->ruleset, r);
    vd_json_emit_object(e);
    vd_json_emit_member_string(e, "code", fired[i]);
    vd_json_emit_member_string(e, "kind", "rule");
    vd_json_emit_member_string(e, "text", description && *description ? description : fired[i]);
    vd_json_emit_member_real(e, "adjust", adjust);
    vd_json_emit_end(e);
    written++;
  }
  return written;
}

/* "model:FEATURE:DIRECTION" into code (a few per decision: no printf). */
static void model_code(const char *feature, const char *direction, char *code, size_t size) {
  vd_text t;
  vd_text_init(&t, code, size);
  vd_text_puts(&t, "model:");
  vd_text_puts(&t, feature);
  vd_text_puts(&t, ":");
  vd_text_puts(&t, direction);
}

static void write_model_reasons(const vd_reasons_input *in, bool against, size_t written,
                                vd_json_emit *e) {
  if (!in->model || !in->contributions || written >= VD_REASONS_MAX) return;
  vd_model_reason picks[VD_REASONS_MAX];
  size_t count = vd_model_reason_pick(in->model, in->contributions, VD_REASONS_MAX, against, picks);
  size_t treatment = vd_model_feature_count(in->model);
  for (size_t k = 0; k < count && written < VD_REASONS_MAX; k++) {
    const vd_model_reason *p = &picks[k];
    if (against && p->raised) continue;
    bool is_treatment = p->feature == treatment;
    const char *feature = is_treatment ? "treatment" : vd_model_feature_name(in->model, p->feature);
    const char *direction = p->raised ? "up" : "down";
    char code[256], text[512];
    model_code(feature, direction, code, sizeof code);
    vd_model_reason_text(in->model, p->feature, p->raised, in->request, text, sizeof text);
    vd_json_emit_object(e);
    vd_json_emit_member_string(e, "code", code);
    vd_json_emit_member_string(e, "kind", "model");
    vd_json_emit_member_string(e, "text", text);
    vd_json_emit_member_string(e, "feature", feature);
    vd_json_emit_member_string(e, "direction", direction);
    vd_json_emit_member_real(e, "contribution", p->contribution);
    if (!is_treatment) {
      vd_json_emit_key(e, "value");
      vd_json_emit_value(
          e, vd_json_get_path(in->request, vd_model_feature_source(in->model, p->feature)));
    }
    vd_json_emit_end(e);
    written++;
  }
}

void vd_reasons_write(const vd_reasons_input *in, vd_json_emit *e) {
  size_t written = 0;
  vd_json_emit_array(e);
  const char *by = vd_rules_outcome_decided_by(in->outcome);
  if (by) {
    const char *text = vd_rules_outcome_reason(in->outcome);
    vd_json_emit_object(e);
    vd_json_emit_member_string(e, "code", by);
    vd_json_emit_member_string(e, "kind", "rule");
    vd_json_emit_member_string(e, "text", text && *text ? text : by);
    vd_json_emit_end(e);
    written++;
  }
  bool against = !in->selected;
  written = write_adjust_rules(in, against, written, e);
  write_model_reasons(in, against, written, e);
  vd_json_emit_end(e);
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
