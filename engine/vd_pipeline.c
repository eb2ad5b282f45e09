#include "vd_pipeline.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vd_reasons.h"
#include "vd_suggest.h"
#include "vd_time.h"

enum { MAX_FIRED = 256 };

/* Everything the pipeline knows about one candidate while deciding. */
typedef struct candidate_state {
  const vd_candidate_def *def;
  const json_t *fields; /* the normalised candidate object (borrowed from the request) */
  vd_rules_outcome *outcome;
  bool scored; /* the model scored it */
  double p_treatment, p_control, uplift, margin;
  json_t *model_json;    /* trace: the model's result */
  double *contributions; /* the model's per input feature (+ treatment), for the reasons */
  const char *fallback;  /* why the model did not score it (NULL: scored or settled) */
  char model_error[VD_ERROR_MESSAGE_MAX];
  vd_error request_error; /* field set: the request holds a value the model cannot read */
  bool eligible;
  const char *action;
  double score;
  size_t rank; /* 0: not ranked */
} candidate_state;

void vd_decision_clear(vd_decision *d) {
  if (!d) return;
  json_decref(d->response);
  json_decref(d->trace);
  *d = (vd_decision){0};
}

static void violation(vd_diags *diags, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(vd_diags *diags, const char *field, const char *fmt, ...) {
  vd_error e;
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  vd_error_field(&e, field, "%s", message);
  if (diags) vd_diags_add(diags, &e);
}

/* The request the schema sees: `candidates` resolved against the deployment (ids looked up, the
 * deployment's fields under the request's), or every deployment candidate when absent. defs[i]
 * gets the definition of the i-th candidate kept. Engine-level violations go to diags. */
static json_t *resolve_candidates(const vd_deployment *d, const json_t *request,
                                  const vd_candidate_def **defs, size_t *count, vd_diags *diags) {
  json_t *effective = json_copy((json_t *)request);
  json_t *list = json_array();
  const json_t *given = json_object_get(request, "candidates");
  *count = 0;
  if (!given || json_is_null(given)) {
    for (size_t i = 0; i < vd_deployment_candidate_count(d); i++) {
      const vd_candidate_def *def = vd_deployment_candidate(d, i);
      json_array_append_new(list, json_deep_copy(def->fields));
      defs[(*count)++] = def;
    }
  } else if (!json_is_array(given) || json_array_size(given) == 0) {
    violation(diags, "candidates", "expected a non-empty list of candidates ({\"id\": ...})");
  } else {
    size_t i;
    json_t *c;
    json_array_foreach(given, i, c) {
      char path[64];
      snprintf(path, sizeof path, "candidates[%zu].id", i);
      const char *id = json_string_value(json_object_get(c, "id"));
      if (!json_is_object(c) || !id) {
        violation(diags, path, "every candidate needs an \"id\" (a string)");
        continue;
      }
      const vd_candidate_def *def = vd_deployment_find_candidate(d, id);
      if (!def) {
        char offered[512] = "";
        for (size_t k = 0; k < vd_deployment_candidate_count(d); k++) {
          if (k) strncat(offered, ", ", sizeof offered - strlen(offered) - 1);
          strncat(offered, vd_deployment_candidate(d, k)->id, sizeof offered - strlen(offered) - 1);
        }
        violation(diags, path, "unknown candidate \"%s\" (this deployment offers: %s)", id,
                  offered);
        continue;
      }
      bool duplicate = false;
      for (size_t k = 0; k < *count; k++) duplicate = duplicate || defs[k] == def;
      if (duplicate) {
        violation(diags, path, "candidate \"%s\" is listed twice", id);
        continue;
      }
      json_t *merged = json_deep_copy(def->fields);
      json_object_update(merged, c);
      json_array_append_new(list, merged);
      defs[(*count)++] = def;
    }
  }
  json_object_set_new(effective, "candidates", list);
  return effective;
}

/* The request's top-level keys: the schema's sections and the API options. Anything else is
 * refused (typo safety, as inside a section), so nothing unchecked — of any size or depth —
 * reaches the trace and the decision log. */
static bool known_keys(const json_t *request, vd_diags *diags) {
  static const char *const known[] = {"subject",    "context", "candidate",
                                      "candidates", "explain", "max_results"};
  const size_t count = sizeof known / sizeof known[0];
  bool ok = true;
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)request, key, value) {
    size_t i = 0;
    while (i < count && strcmp(key, known[i]) != 0) i++;
    if (i < count) continue;
    const char *near = vd_suggest(key, known, count);
    violation(diags, key,
              "unknown request key%s%s%s (expected subject, context, candidates, explain, "
              "max_results)",
              near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    ok = false;
  }
  return ok;
}

/* Request-level API options: explain and max_results. */
static bool api_options(const json_t *request, bool *full, size_t *max_results, vd_diags *diags) {
  bool ok = known_keys(request, diags);
  const json_t *explain = json_object_get(request, "explain");
  *full = false;
  if (explain && !json_is_null(explain)) {
    const char *e = json_string_value(explain);
    if (e && strcmp(e, "full") == 0)
      *full = true;
    else if (!e || strcmp(e, "summary") != 0) {
      violation(diags, "explain", "expected \"summary\" or \"full\"");
      ok = false;
    }
  }
  const json_t *max = json_object_get(request, "max_results");
  *max_results = 0;
  if (max && !json_is_null(max)) {
    if (!json_is_integer(max) || json_integer_value(max) < 1) {
      violation(diags, "max_results", "expected an integer >= 1");
      ok = false;
    } else {
      *max_results = (size_t)json_integer_value(max);
    }
  }
  return ok;
}

/* The model reads the request and the treatment only, so candidates sharing a treatment share
 * its result: the first scored candidate j < i with i's treatment, or NULL. */
static const candidate_state *scored_same_treatment(const candidate_state *cs, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (cs[j].scored && strcmp(cs[j].def->treatment, cs[i].def->treatment) == 0) return &cs[j];
  return NULL;
}

static void reuse_score(const vd_model *model, candidate_state *c, const candidate_state *from) {
  c->scored = true;
  c->p_treatment = from->p_treatment;
  c->p_control = from->p_control;
  c->uplift = from->uplift;
  c->margin = from->margin;
  c->model_json = json_incref(from->model_json); /* read-only from here on */
  size_t n = vd_model_feature_count(model) + 1;
  c->contributions = malloc(n * sizeof *c->contributions);
  if (c->contributions) memcpy(c->contributions, from->contributions, n * sizeof *c->contributions);
}

/* Model scoring for one open candidate; on failure records the fallback reason. */
static void score_candidate(const vd_model *model, const json_t *request, candidate_state *c,
                            vd_model_result *result) {
  if (!c->def->treatment) {
    c->fallback = "no_treatment";
    snprintf(c->model_error, sizeof c->model_error,
             "candidate %s has no treatment value in deployment.yaml", c->def->id);
    return;
  }
  vd_error err = {0};
  if (!vd_model_score(model, request, c->def->treatment, true, result, &err)) {
    if (err.field[0]) { /* a request value the model cannot read (e.g. beyond a float) */
      c->request_error = err;
      return;
    }
    c->fallback = "model_error";
    vd_error_format(&err, c->model_error, sizeof c->model_error);
    return;
  }
  c->scored = true;
  c->p_treatment = result->p_treatment;
  c->p_control = result->p_control;
  c->uplift = result->uplift;
  c->margin = result->margin;
  c->model_json = vd_model_result_to_json(model, result);
  c->contributions = malloc(result->feature_count * sizeof *c->contributions);
  if (c->contributions)
    memcpy(c->contributions, result->feature_contributions,
           result->feature_count * sizeof *c->contributions);
}

/* What the reasons of a decision's candidates are computed from. */
typedef struct reasons_context {
  const vd_ruleset *rs;
  const vd_model *model;
  const json_t *request;
} reasons_context;

/* The reasons of one result (explain/vd_reasons.h decides what they say). Only the few model
 * reasons that can be shown are turned into text: the strongest ones, or for a candidate not
 * selected the strongest against it. */
static json_t *reasons_of(const reasons_context *rc, const candidate_state *c) {
  bool selected = c->eligible && c->rank > 0;
  json_t *model_reasons =
      c->scored && c->contributions
          ? vd_model_reasons(rc->model, c->contributions, rc->request, VD_REASONS_MAX, !selected)
          : NULL;
  json_t *reasons = vd_reasons_build(&(vd_reasons_input){.ruleset = rc->rs,
                                                         .outcome = c->outcome,
                                                         .model_reasons = model_reasons,
                                                         .selected = selected});
  json_decref(model_reasons);
  return reasons;
}

/* Settles eligibility, action and score from the rule outcome and the model. */
static void combine(const vd_ruleset *rs, candidate_state *c) {
  double base = c->scored ? c->uplift : vd_ruleset_default_score(rs);
  c->score = base + vd_rules_outcome_adjust(c->outcome);
  const char *route = vd_rules_outcome_value(c->outcome, VD_ACTION_ROUTE, NULL);
  switch (vd_rules_outcome_decision(c->outcome)) {
    case VD_DECISION_DENY:
      c->eligible = false;
      c->action = "deny";
      break;
    case VD_DECISION_ALLOW:
      c->eligible = true;
      c->action = "allow";
      break;
    case VD_DECISION_OPEN:
      c->eligible = true;
      c->action = route ? "route" : "offer";
      break;
  }
}

static int by_score(const void *a, const void *b) {
  const candidate_state *x = *(candidate_state *const *)a, *y = *(candidate_state *const *)b;
  if (x->score > y->score) return -1;
  if (x->score < y->score) return 1;
  return x < y ? -1 : (x > y); /* stable: candidate order breaks ties */
}

static json_t *result_json(const reasons_context *rc, const candidate_state *c) {
  json_t *r = json_pack("{s:s, s:b, s:o, s:o, s:s, s:o}", "candidate", c->def->id, "eligible",
                        c->eligible, "score", c->eligible ? json_real(c->score) : json_null(),
                        "rank", c->rank ? json_integer((json_int_t)c->rank) : json_null(), "action",
                        c->action, "reasons", reasons_of(rc, c));
  const char *route = vd_rules_outcome_value(c->outcome, VD_ACTION_ROUTE, NULL);
  if (route) json_object_set_new(r, "route", json_string(route));
  if (c->scored)
    json_object_set_new(
        r, "model",
        json_pack("{s:f, s:f, s:f, s:f}", "p_treatment", c->p_treatment, "p_control", c->p_control,
                  "uplift", c->uplift, "margin", c->margin));
  return r;
}

static json_t *trace_candidate(const reasons_context *rc, const candidate_state *c,
                               const json_t *result) {
  json_t *outcome = json_pack(
      "{s:b, s:s, s:o, s:o, s:o}", "eligible", c->eligible, "action", c->action, "score",
      json_real(c->score), "rank", c->rank ? json_integer((json_int_t)c->rank) : json_null(),
      "decided_by",
      vd_rules_outcome_decided_by(c->outcome) ? json_string(vd_rules_outcome_decided_by(c->outcome))
                                              : json_null());
  json_t *record = json_pack(
      "{s:s, s:o, s:o, s:O, s:o, s:o}", "candidate", c->def->id, "treatment",
      c->def->treatment ? json_string(c->def->treatment) : json_null(), "rules",
      vd_rules_outcome_to_json(c->outcome), "model", c->model_json ? c->model_json : json_null(),
      "reasons", result ? json_incref(json_object_get(result, "reasons")) : reasons_of(rc, c),
      "outcome", outcome);
  if (c->fallback)
    json_object_set_new(record, "fallback",
                        json_pack("{s:s, s:s}", "reason", c->fallback, "message", c->model_error));
  return record;
}

static void count_metrics(vd_metrics *m, candidate_state *cs, size_t n, const char *fallback) {
  if (!m) return;
  for (size_t i = 0; i < n; i++) {
    vd_metrics_count(m, VD_FAMILY_DECISIONS, cs[i].action, 1);
    const char *fired[MAX_FIRED];
    size_t k = vd_rules_outcome_fired(cs[i].outcome, fired, MAX_FIRED);
    for (size_t j = 0; j < k && j < MAX_FIRED; j++)
      vd_metrics_count(m, VD_FAMILY_RULES_FIRED, fired[j], 1);
  }
  if (fallback) vd_metrics_count(m, VD_FAMILY_FALLBACKS, fallback, 1);
}

vd_pipeline_status vd_pipeline_decide(const vd_deployment *d, const vd_pipeline_input *in,
                                      vd_decision *out, vd_diags *violations, vd_error *err) {
  *out = (vd_decision){0};
  uint64_t t0 = vd_monotonic_ns();
  int64_t now = in->now_us ? in->now_us : vd_wall_us();
  const vd_ruleset *rs = vd_deployment_ruleset(d);
  const vd_schema *schema = vd_deployment_schema(d);
  const vd_model *model = vd_deployment_model(d);
  if (!json_is_object(in->request)) {
    violation(violations, "", "the request must be a JSON object");
    return VD_PIPELINE_INVALID;
  }

  /* 1. Validate: engine-level checks and the schema, reporting every violation at once. */
  size_t before = violations ? violations->count : 0;
  bool full = false;
  size_t request_max = 0;
  bool options_ok = api_options(in->request, &full, &request_max, violations);
  size_t slots = vd_deployment_candidate_count(d) +
                 json_array_size(json_object_get(in->request, "candidates"));
  const vd_candidate_def **defs = calloc(slots ? slots : 1, sizeof(const vd_candidate_def *));
  if (!defs) {
    vd_error_set(err, "out of memory");
    return VD_PIPELINE_ERROR;
  }
  size_t n = 0;
  json_t *effective = resolve_candidates(d, in->request, defs, &n, violations);
  json_t *request = vd_schema_validate_at(schema, effective, now, violations);
  json_decref(effective);
  if (!request || !options_ok || (violations && violations->count > before) || n == 0) {
    if (violations && violations->count == before)
      violation(violations, "candidates", "no candidate to score");
    json_decref(request);
    free(defs);
    return VD_PIPELINE_INVALID;
  }
  uint64_t t_validated = vd_monotonic_ns();

  vd_pipeline_status status = VD_PIPELINE_ERROR;
  candidate_state *cs = calloc(n, sizeof *cs);
  candidate_state **order = calloc(n, sizeof(candidate_state *));
  vd_rules_frame *frame = vd_rules_frame_new(rs);
  vd_model_result result = {0};
  bool have_result = false;
  const char *fallback = NULL;
  const char *fallback_message = NULL;
  uint64_t model_ns = 0;
  if (!cs || !order || !frame) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  /* 2. before_model rules, per candidate. */
  const json_t *candidates = json_object_get(request, "candidates");
  if (!vd_rules_frame_bind_request(frame, request, err)) goto done;
  for (size_t i = 0; i < n; i++) {
    candidate_state *c = &cs[i];
    c->def = defs[i];
    c->fields = json_array_get(candidates, i);
    c->outcome = vd_rules_outcome_new(rs);
    if (!c->outcome) {
      vd_error_set(err, "out of memory");
      goto done;
    }
    if (!vd_rules_frame_bind_candidate(frame, c->fields, err) ||
        !vd_ruleset_eval_stage(rs, frame, VD_STAGE_BEFORE_MODEL, c->outcome, err))
      goto done;
  }
  /* 3. The model for the candidates still open; 4. after_model rules on their scores. */
  uint64_t t_model = vd_monotonic_ns();
  if (model) have_result = vd_model_result_init(model, &result, err);
  if (model && !have_result) goto done;
  uint64_t budget_ns = (uint64_t)vd_deployment_model_budget_us(d) * 1000u;
  bool scored_any = false;
  for (size_t i = 0; i < n; i++) {
    candidate_state *c = &cs[i];
    if (vd_rules_outcome_settled(c->outcome)) continue;
    const candidate_state *same = model && c->def->treatment ? scored_same_treatment(cs, i) : NULL;
    /* The first open candidate is always scored; the budget bounds the ones after it (a shared
     * result costs nothing). */
    if (same) {
      reuse_score(model, c, same);
    } else if (model && budget_ns && scored_any && vd_monotonic_ns() - t_model > budget_ns) {
      c->fallback = "model_budget_exceeded";
      snprintf(c->model_error, sizeof c->model_error,
               "the model's budget of %u us per decision was spent before this candidate",
               vd_deployment_model_budget_us(d));
    } else if (!model) {
      c->fallback = "model_unavailable";
      snprintf(c->model_error, sizeof c->model_error, "%s",
               vd_deployment_model_error(d) ? vd_deployment_model_error(d) : "no model");
    } else {
      score_candidate(model, request, c, &result);
      scored_any = true;
      if (c->request_error.field[0]) { /* the client's mistake: a 400 naming the field */
        if (violations) vd_diags_add(violations, &c->request_error);
        status = VD_PIPELINE_INVALID;
        goto done;
      }
    }
    if (c->fallback && !fallback) {
      fallback = c->fallback;
      fallback_message = c->model_error;
    }
  }
  model_ns = vd_monotonic_ns() - t_model;
  for (size_t i = 0; i < n; i++) {
    candidate_state *c = &cs[i];
    if (!c->scored) continue;
    vd_rules_scores scores = {.p_treatment = c->p_treatment,
                              .p_control = c->p_control,
                              .uplift = c->uplift,
                              .margin = c->margin,
                              .value = c->uplift,
                              .confidence = NAN,
                              .intent = NULL};
    if (!vd_rules_frame_bind_candidate(frame, c->fields, err)) goto done;
    vd_rules_frame_bind_scores(frame, &scores);
    if (!vd_ruleset_eval_stage(rs, frame, VD_STAGE_AFTER_MODEL, c->outcome, err)) goto done;
  }
  uint64_t t_rules_done = vd_monotonic_ns();

  /* 5. Combine, rank, cap. */
  size_t eligible = 0;
  for (size_t i = 0; i < n; i++) {
    combine(rs, &cs[i]);
    /* adjust rules can push a score past the range of a double; an infinite score cannot be
     * ranked, answered or stored, so the decision fails rather than answer without it */
    if (!isfinite(cs[i].score)) {
      vd_error_set(err,
                   "candidate %s: the score is not a finite number (%g): the adjust rules that "
                   "fired sum beyond the range of a double",
                   cs[i].def->id, cs[i].score);
      goto done;
    }
    if (cs[i].eligible) order[eligible++] = &cs[i];
  }
  qsort(order, eligible, sizeof(candidate_state *), by_score);
  size_t cap = eligible;
  size_t limits[] = {vd_deployment_max_results(d), in->max_results, request_max};
  for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++)
    if (limits[k] && limits[k] < cap) cap = limits[k];
  for (size_t r = 0; r < eligible; r++) {
    if (r < cap)
      order[r]->rank = r + 1;
    else
      order[r]->action = "capped"; /* recorded in the trace, left out of the response */
  }

  /* 6. Response and trace. */
  json_t *results = json_array();
  json_t **result_of = calloc(n, sizeof(json_t *));
  if (!results || !result_of) {
    json_decref(results);
    free(result_of);
    vd_error_set(err, "out of memory");
    goto done;
  }
  const reasons_context rc = {.rs = rs, .model = model, .request = request};
  for (size_t r = 0; r < cap; r++) result_of[order[r] - cs] = result_json(&rc, order[r]);
  for (size_t i = 0; i < n; i++)
    if (!cs[i].eligible) result_of[i] = result_json(&rc, &cs[i]);
  size_t answered = 0; /* a result that could not be built fails the decision, never drops */
  for (size_t r = 0; r < cap; r++)
    answered += json_array_append(results, result_of[order[r] - cs]) == 0;
  for (size_t i = 0; i < n; i++)
    if (!cs[i].eligible) answered += json_array_append(results, result_of[i]) == 0;
  if (answered != cap + (n - eligible)) {
    for (size_t i = 0; i < n; i++) json_decref(result_of[i]);
    json_decref(results);
    free(result_of);
    vd_error_set(err, "out of memory building the response");
    goto done;
  }

  json_t *ruleset =
      json_pack("{s:s, s:s}", "name", vd_ruleset_name(rs), "version", vd_ruleset_version(rs));
  json_t *model_id = model ? json_pack("{s:s, s:s}", "name", vd_model_name(model), "version",
                                       vd_model_version(model))
                           : json_null();
  json_t *fallback_json =
      fallback ? json_pack("{s:s, s:s}", "reason", fallback, "message", fallback_message)
               : json_null();
  vd_trace_header header = {.id = in->decision_id,
                            .kind = vd_deployment_kind(d),
                            .timestamp_us = now,
                            .deployment = vd_deployment_name(d),
                            .deployment_version = vd_deployment_version(d),
                            .max_results_cap = in->max_results,
                            .ruleset_name = vd_ruleset_name(rs),
                            .ruleset_version = vd_ruleset_version(rs),
                            .schema_name = vd_schema_name(schema),
                            .schema_version = vd_schema_version(schema),
                            .model_name = model ? vd_model_name(model) : NULL,
                            .model_version = model ? vd_model_version(model) : NULL,
                            .fallback_reason = fallback,
                            .fallback_message = fallback_message};
  json_t *trace = vd_trace_begin(&header, in->request, in->mask);
  for (size_t i = 0; i < n; i++) {
    json_t *record = trace_candidate(&rc, &cs[i], result_of[i]);
    if (full && result_of[i]) json_object_set(result_of[i], "explanation", record);
    vd_trace_add_candidate(trace, record);
  }
  for (size_t i = 0; i < n; i++) json_decref(result_of[i]);
  free(result_of);
  out->response =
      json_pack("{s:s, s:o, s:o, s:o, s:o}", "decision_id", in->decision_id, "results", results,
                "ruleset", ruleset, "model", model_id, "fallback", fallback_json);
  uint64_t t_end = vd_monotonic_ns();
  vd_trace_finish(trace, out->response, (double)(t_validated - t0) / 1e3,
                  (double)(t_rules_done - t_validated - model_ns) / 1e3, (double)model_ns / 1e3,
                  (double)(t_end - t0) / 1e3);
  out->trace = trace;
  if (!out->response || !trace) {
    vd_decision_clear(out);
    vd_error_set(err, "out of memory");
    goto done;
  }
  out->subject_id = json_string_value(
      json_object_get(json_object_get(json_object_get(trace, "request"), "subject"), "id"));
  out->ruleset_version = vd_ruleset_version(rs);
  out->model_version = model ? vd_model_version(model) : NULL;
  count_metrics(in->metrics, cs, n, fallback);
  status = VD_PIPELINE_OK;
done:
  if (cs)
    for (size_t i = 0; i < n; i++) {
      vd_rules_outcome_free(cs[i].outcome);
      json_decref(cs[i].model_json);
      free(cs[i].contributions);
    }
  if (have_result) vd_model_result_free(&result);
  vd_rules_frame_free(frame);
  free(cs);
  free(order);
  free(defs);
  json_decref(request);
  return status;
}
