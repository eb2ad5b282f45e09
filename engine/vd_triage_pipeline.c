#include "vd_triage_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_pan.h"
#include "vd_store.h"
#include "vd_time.h"

enum { TOP_K = 3, TRACE_FEATURES = 10 };

static const char *const default_route = "human_review";
static const char *const default_priority = "normal";

static double us_since(uint64_t start_ns) { return (double)(vd_monotonic_ns() - start_ns) / 1e3; }

static void violation(vd_diags *diags, const char *field, const char *message) {
  vd_error e = {0};
  vd_error_field(&e, field, "%s", message);
  if (diags) vd_diags_add(diags, &e);
}

/* The schema's paths back to the API's field names. */
static const char *api_field(const char *path) {
  if (strcmp(path, "context.text") == 0) return "text";
  if (strcmp(path, "context.channel") == 0) return "channel";
  return path;
}

/* Checks the body's top-level keys and builds the schema request from the masked text. */
static json_t *schema_request(const json_t *body, const char *masked, vd_diags *diags) {
  bool ok = true;
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)body, key, value) {
    if (strcmp(key, "text") == 0 || strcmp(key, "channel") == 0 || strcmp(key, "subject") == 0)
      continue;
    char message[160];
    snprintf(message, sizeof message, "unknown request key (expected text, channel, subject)");
    violation(diags, key, message);
    ok = false;
  }
  const json_t *text = json_object_get(body, "text");
  if (!json_is_string(text)) {
    violation(diags, "text", text ? "expected a string" : "required: the request's text");
    ok = false;
  }
  if (!ok) return NULL;
  json_t *context = json_pack("{s:s}", "text", masked);
  const json_t *channel = json_object_get(body, "channel");
  if (channel && !json_is_null(channel)) json_object_set(context, "channel", (json_t *)channel);
  json_t *req = json_pack("{s:o, s:{s:s}}", "context", context, "candidate", "id", "request");
  const json_t *subject = json_object_get(body, "subject");
  if (subject && !json_is_null(subject)) json_object_set(req, "subject", (json_t *)subject);
  return req;
}

static json_t *validate(const vd_schema *schema, const json_t *req, int64_t now_us,
                        vd_diags *violations) {
  vd_diags found = {0};
  json_t *normal = vd_schema_validate_at(schema, req, now_us, &found);
  for (size_t i = 0; i < found.count; i++) {
    vd_error e = found.items[i];
    char field[sizeof e.field];
    snprintf(field, sizeof field, "%s", api_field(e.field));
    snprintf(e.field, sizeof e.field, "%s", field);
    if (violations) vd_diags_add(violations, &e);
  }
  vd_diags_free(&found);
  return normal;
}

/* Every route the rule file can set (for the classify task: the routes it may answer). */
static json_t *rule_routes(const vd_ruleset *rs) {
  json_t *routes = json_array();
  for (size_t i = 0; i < vd_ruleset_rule_count(rs); i++) {
    if (vd_ruleset_rule_action(rs, i) != VD_ACTION_ROUTE) continue;
    const char *r = json_string_value(vd_ruleset_rule_argument(rs, i));
    bool seen = false;
    size_t j;
    json_t *v;
    json_array_foreach(routes, j, v) seen = seen || strcmp(json_string_value(v), r) == 0;
    if (r && !seen) json_array_append_new(routes, json_string(r));
  }
  return routes;
}

/* The itinerary input from the rules extractor, or NULL (with *why) when the text lacks what an
 * itinerary needs. */
static json_t *itinerary_input(const vd_gazetteer *gz, const char *text, const char *today,
                               const char **why) {
  *why = "no gazetteer is loaded";
  if (!gz) return NULL;
  vd_extract_result x = {0};
  vd_error e = {0};
  if (!vd_extract_rules(gz, text, strlen(text), today, &x, &e)) return NULL;
  json_t *f = x.fields;
  const json_t *dest = json_array_get(json_object_get(f, "destinations"), 0);
  const json_t *start = json_object_get(f, "start_date");
  const json_t *end = json_object_get(f, "end_date");
  json_t *in = NULL;
  if (json_is_string(dest) && json_is_string(start) && json_is_string(end)) {
    in = json_pack("{s:O, s:O, s:O}", "destination", dest, "start_date", start, "end_date", end);
    json_int_t people = json_integer_value(json_object_get(f, "adults")) +
                        json_integer_value(json_object_get(f, "children"));
    if (people >= 1 && people <= 20) json_object_set_new(in, "travelers", json_integer(people));
    const json_t *interests = json_object_get(f, "interests");
    if (json_array_size(interests)) json_object_set(in, "interests", (json_t *)interests);
  } else {
    *why = "the text names no destination or no dates: the trip fields are extracted first";
  }
  json_decref(f);
  return in;
}

static void set_escalation_input(vd_triage_decision *out, const vd_triage_input *in,
                                 const vd_ruleset *rs, const char *text, const char *channel,
                                 const json_t *provisional, int64_t now_us, json_t *trace) {
  char stamp[40];
  vd_format_rfc3339_us(now_us, stamp, sizeof stamp);
  stamp[10] = '\0'; /* YYYY-MM-DD */
  if (strcmp(out->escalate, "classify") == 0) {
    out->escalation_input = json_pack("{s:s, s:O, s:o}", "text", text, "provisional", provisional,
                                      "routes", rule_routes(rs));
    if (channel) json_object_set_new(out->escalation_input, "channel", json_string(channel));
  } else if (strcmp(out->escalate, "itinerary") == 0) {
    const char *why = NULL;
    out->escalation_input = itinerary_input(in->gazetteer, text, stamp, &why);
    if (!out->escalation_input) {
      out->escalate = "extract";
      json_object_set_new(trace, "escalation_note",
                          json_pack("{s:s, s:s}", "requested", "itinerary", "why", why));
    }
  }
  if (strcmp(out->escalate, "extract") == 0)
    out->escalation_input = json_pack("{s:s, s:s}", "text", text, "reference_date", stamp);
}

vd_pipeline_status vd_triage_decide(const vd_deployment *d, const vd_triage_input *in,
                                    vd_triage_decision *out, vd_diags *violations, vd_error *err) {
  memset(out, 0, sizeof *out);
  uint64_t t0 = vd_monotonic_ns();
  int64_t now_us = in->now_us ? in->now_us : vd_wall_us();
  const vd_ruleset *rs = vd_deployment_ruleset(d);
  const vd_triage_model *model = vd_deployment_triage(d);
  if (!json_is_object(in->request)) {
    violation(violations, "", "the body must be a JSON object");
    return VD_PIPELINE_INVALID;
  }

  /* 1. Mask card numbers first: everything below sees only the masked text. */
  const char *raw = json_string_value(json_object_get(in->request, "text"));
  size_t raw_len = json_string_length(json_object_get(in->request, "text"));
  vd_buf masked = {0};
  if (raw && in->text_masked) { /* replay: the stored text as is (masking is not idempotent) */
    vd_buf_append(&masked, raw, raw_len);
    out->cards_masked = in->cards_masked;
  } else if (raw) {
    out->cards_masked = vd_pan_mask(raw, raw_len, &masked);
  }
  vd_buf_append(&masked, "", 0);
  if (masked.oom) {
    vd_buf_free(&masked);
    vd_error_set(err, "out of memory");
    return VD_PIPELINE_ERROR;
  }
  json_t *received = json_deep_copy(in->request);
  if (raw) json_object_set_new(received, "text", json_string(masked.data ? masked.data : ""));

  vd_rules_frame *frame = NULL;
  vd_rules_outcome *outcome = NULL;
  vd_triage_scratch *scratch = NULL;
  json_t *normal = NULL;
  vd_pipeline_status status = VD_PIPELINE_ERROR;

  json_t *req = schema_request(in->request, masked.data ? masked.data : "", violations);
  if (req) normal = validate(vd_deployment_schema(d), req, now_us, violations);
  json_decref(req);
  if (!normal) {
    status = VD_PIPELINE_INVALID;
    goto done;
  }
  double validate_us = us_since(t0);

  /* 2. Rules before the model. */
  uint64_t t_rules = vd_monotonic_ns();
  frame = vd_rules_frame_new(rs);
  outcome = vd_rules_outcome_new(rs);
  if (!frame || !outcome) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  if (!vd_rules_frame_bind_request(frame, normal, err) ||
      !vd_rules_frame_bind_candidate(frame, json_object_get(normal, "candidate"), err))
    goto done;
  vd_rules_outcome_reset(outcome);
  if (!vd_ruleset_eval_stage(rs, frame, VD_STAGE_BEFORE_MODEL, outcome, err)) goto done;
  bool settled = vd_rules_outcome_settled(outcome);
  double rules_us = us_since(t_rules);

  /* 3. The model, then the rules after it. */
  double model_us = 0;
  vd_triage_result result = {0};
  bool scored = false;
  if (!settled && model) {
    uint64_t t_model = vd_monotonic_ns();
    scratch = vd_triage_scratch_new(model);
    if (!scratch) {
      vd_error_set(err, "out of memory");
      goto done;
    }
    const char *text =
        json_string_value(json_object_get(json_object_get(normal, "context"), "text"));
    if (!vd_triage_score(model, scratch, text, strlen(text), TOP_K, true, &result, err)) goto done;
    scored = true;
    model_us = us_since(t_model);
    uint64_t t_after = vd_monotonic_ns();
    vd_rules_scores scores = {.confidence = result.confidence,
                              .value = result.confidence - vd_triage_threshold(model),
                              .margin = result.top[0].margin,
                              .intent = result.top[0].intent};
    vd_rules_frame_bind_scores(frame, &scores);
    if (!vd_ruleset_eval_stage(rs, frame, VD_STAGE_AFTER_MODEL, outcome, err)) goto done;
    rules_us += us_since(t_after);
  }

  /* 4. Combine. */
  const char *route = vd_rules_outcome_value(outcome, VD_ACTION_ROUTE, NULL);
  const char *priority = vd_rules_outcome_value(outcome, VD_ACTION_PRIORITY, NULL);
  out->escalate = vd_rules_outcome_value(outcome, VD_ACTION_ESCALATE, NULL);
  bool fallback = !settled && !scored;
  if (fallback) {
    out->escalate = "classify";
    if (!route) route = default_route;
  }
  if (!route) route = default_route;
  if (!priority) priority = default_priority;
  const char *handled_by = settled                                                   ? "rules"
                           : out->escalate && strcmp(out->escalate, "classify") == 0 ? "llm_pending"
                                                                                     : "model";

  json_t *top = json_array();
  for (size_t i = 0; scored && i < result.top_count; i++)
    json_array_append_new(top, json_pack("{s:s, s:f}", "intent", result.top[i].intent,
                                         "probability", result.top[i].probability));
  json_t *model_ref = model ? json_pack("{s:s, s:s}", "name", vd_triage_name(model), "version",
                                        vd_triage_version(model))
                            : json_null();
  const char *model_error = vd_deployment_model_error(d);
  json_t *fallback_json = fallback && !settled
                              ? json_pack("{s:s, s:s}", "reason", "model_unavailable", "message",
                                          model_error ? model_error : "the deployment has no model")
                              : json_null();
  out->response =
      json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:n, s:{s:s, s:s}, s:o, s:o}", "decision_id",
                in->decision_id, "intent", scored ? json_string(result.top[0].intent) : json_null(),
                "confidence", scored ? json_real(result.confidence) : json_null(), "top", top,
                "route", route, "priority", priority, "handled_by", handled_by, "escalation",
                "ruleset", "name", vd_ruleset_name(rs), "version", vd_ruleset_version(rs), "model",
                model_ref, "fallback", fallback_json);

  /* 5. The trace. */
  const vd_schema *schema = vd_deployment_schema(d);
  vd_trace_header header = {.id = in->decision_id,
                            .kind = "triage",
                            .timestamp_us = now_us,
                            .deployment = vd_deployment_name(d),
                            .deployment_version = vd_deployment_version(d),
                            .ruleset_name = vd_ruleset_name(rs),
                            .ruleset_version = vd_ruleset_version(rs),
                            .schema_name = vd_schema_name(schema),
                            .schema_version = vd_schema_version(schema),
                            .model_name = model ? vd_triage_name(model) : NULL,
                            .model_version = model ? vd_triage_version(model) : NULL,
                            .fallback_reason = fallback ? "model_unavailable" : NULL,
                            .fallback_message = fallback ? model_error : NULL};
  out->trace = vd_trace_begin(&header, received, in->mask);
  json_object_set_new(out->trace, "gazetteer",
                      in->gazetteer && in->gazetteer_version
                          ? json_pack("{s:s}", "version", in->gazetteer_version)
                          : json_null());
  json_t *record =
      json_pack("{s:s, s:o, s:o, s:{s:s, s:s, s:o, s:s}}", "candidate", "request", "rules",
                vd_rules_outcome_to_json(outcome), "model",
                scored ? vd_triage_result_to_json(model, &result, TRACE_FEATURES) : json_null(),
                "outcome", "route", route, "priority", priority, "escalate",
                out->escalate ? json_string(out->escalate) : json_null(), "handled_by", handled_by);
  json_object_set_new(record, "cards_masked", json_integer((json_int_t)out->cards_masked));
  vd_trace_add_candidate(out->trace, record);
  if (out->escalate) {
    json_t *provisional = json_pack(
        "{s:o, s:s, s:o}", "intent", scored ? json_string(result.top[0].intent) : json_null(),
        "route", route, "confidence", scored ? json_real(result.confidence) : json_real(0));
    if (!scored) json_object_del(provisional, "intent");
    set_escalation_input(
        out, in, rs, json_string_value(json_object_get(received, "text")),
        json_string_value(json_object_get(json_object_get(normal, "context"), "channel")),
        provisional, now_us, out->trace);
    json_decref(provisional);
  }
  json_object_set_new(out->trace, "escalation", json_null());
  vd_trace_finish(out->trace, out->response, validate_us, rules_us, model_us, us_since(t0));
  if (!out->response || !out->trace) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  const json_t *subject_id =
      json_object_get(json_object_get(json_object_get(out->trace, "request"), "subject"), "id");
  out->subject_id = json_string_value(subject_id);
  out->ruleset_version = vd_ruleset_version(rs);
  out->model_version = model ? vd_triage_version(model) : NULL;
  status = VD_PIPELINE_OK;
done:
  if (status != VD_PIPELINE_OK) vd_triage_decision_clear(out);
  vd_triage_scratch_free(scratch);
  vd_rules_frame_free(frame);
  vd_rules_outcome_free(outcome);
  json_decref(normal);
  json_decref(received);
  vd_buf_free(&masked);
  return status;
}

void vd_triage_record_escalation(vd_triage_decision *d, const char *job_id, const char *error) {
  if (!d->escalate || !d->response) return;
  json_t *e = json_pack("{s:o, s:s}", "job_id", job_id ? json_string(job_id) : json_null(), "task",
                        d->escalate);
  if (error) json_object_set_new(e, "error", json_string(error));
  json_object_set(d->response, "escalation", e);
  json_object_set_new(d->trace, "escalation", e);
}

void vd_triage_decision_clear(vd_triage_decision *d) {
  json_decref(d->response);
  json_decref(d->trace);
  json_decref(d->escalation_input);
  memset(d, 0, sizeof *d);
}

vd_gazetteer *vd_triage_gazetteer_open(const char *path, const char *data_dir,
                                       char version[VD_SHA256_HEX_SIZE], vd_error *err) {
  size_t size = 0;
  char *text = vd_read_file(path, (size_t)64 << 20, &size, err);
  if (!text) return NULL;
  vd_sha256_hex(text, size, version);
  bool ok = true;
  if (data_dir) {
    vd_store_txn *t = vd_store_begin(data_dir, "gazetteers", version, err);
    ok = t && vd_store_add_bytes(t, "gazetteer.tsv", text, size, err);
    if (t && !ok) vd_store_abort(t);
    if (ok) ok = vd_store_commit(t, NULL, 0, err);
    if (!ok) vd_error_prefix(err, "cannot store gazetteer %s for replay", path);
  }
  vd_gazetteer *g = ok ? vd_gazetteer_load_string(text, size, path, err) : NULL;
  free(text);
  return g;
}

vd_gazetteer *vd_triage_gazetteer_stored(const char *data_dir, const char *version, vd_error *err) {
  char dir[4096];
  if (!vd_store_path(data_dir, "gazetteers", version, dir, sizeof dir, err)) return NULL;
  char path[4200];
  snprintf(path, sizeof path, "%s/gazetteer.tsv", dir);
  char stored[VD_SHA256_HEX_SIZE];
  vd_gazetteer *g = vd_triage_gazetteer_open(path, NULL, stored, err);
  if (g && strcmp(stored, version) != 0) {
    vd_gazetteer_free(g);
    vd_error_set(err, "stored gazetteer %s hashes to %s: the store was altered", version, stored);
    return NULL;
  }
  return g;
}
