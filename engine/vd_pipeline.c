#include "vd_pipeline.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vd_reasons.h"
#include "vd_suggest.h"
#include "vd_time.h"

enum { MAX_FIRED = 256 };
/* First sizes of the text buffers: the parts of a 2-candidate decision (~6 KB) and the trace's
 * header and request around them fit without a realloc chain. */
enum { PARTS_CAPACITY = 16 * 1024, TRACE_HEAD_ROOM = 4 * 1024 };

/* Everything the pipeline knows about one candidate while deciding. */
typedef struct candidate_state {
  const vd_candidate_def *def;
  const json_t *fields; /* the normalised candidate object (borrowed from the request) */
  vd_rules_outcome *outcome;
  bool scored; /* the model scored it */
  double p_treatment, p_control, uplift, margin;
  size_t model_at, model_len; /* trace: the model's result, as text in the parts buffer */
  double *contributions;      /* the model's per input feature (+ treatment), for the reasons */
  const char *fallback;       /* why the model did not score it (NULL: scored or settled) */
  char model_error[VD_ERROR_MESSAGE_MAX];
  bool eligible;
  const char *action;
  double score;
  size_t rank; /* 0: not ranked */
} candidate_state;

void vd_decision_clear(vd_decision *d) {
  if (!d) return;
  json_decref(d->response);
  json_decref(d->trace);
  free(d->trace_text);
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
    /* copies, not the deployment's objects: sharing them (7ccc408) had request threads race on
     * their reference counts — jansson's json_incref reads the count before its atomic add
     * (ThreadSanitizer, integration/test_reload_storm) */
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
  c->model_at = from->model_at; /* the same text */
  c->model_len = from->model_len;
  size_t n = vd_model_feature_count(model) + 1;
  c->contributions = malloc(n * sizeof *c->contributions);
  if (c->contributions) memcpy(c->contributions, from->contributions, n * sizeof *c->contributions);
}

/* Model scoring for one open candidate; on failure records the fallback reason. False when the
 * request holds a value the model cannot read (the client's mistake, e.g. beyond a float):
 * request_error names the field. request_error holds the model's error otherwise; it is not
 * cleared beforehand (a kilobyte per candidate), only the first bytes of the texts read after a
 * failure. */
static bool score_candidate(const vd_model *model, const json_t *request, candidate_state *c,
                            vd_model_result *result, vd_buf *parts, vd_error *request_error) {
  if (!c->def->treatment) {
    c->fallback = "no_treatment";
    snprintf(c->model_error, sizeof c->model_error,
             "candidate %s has no treatment value in deployment.yaml", c->def->id);
    return true;
  }
  vd_error *err = request_error;
  err->message[0] = err->field[0] = err->file[0] = '\0';
  if (!vd_model_score(model, request, c->def->treatment, true, result, err)) {
    if (err->field[0]) return false;
    c->fallback = "model_error";
    vd_error_format(err, c->model_error, sizeof c->model_error);
    return true;
  }
  c->scored = true;
  c->p_treatment = result->p_treatment;
  c->p_control = result->p_control;
  c->uplift = result->uplift;
  c->margin = result->margin;
  c->model_at = parts->len;
  vd_json_emit e;
  vd_json_emit_text(&e, parts);
  vd_model_result_write(model, result, &e);
  c->model_len = vd_json_emit_done(&e) ? parts->len - c->model_at : 0; /* 0: no memory */
  c->contributions = malloc(result->feature_count * sizeof *c->contributions);
  if (c->contributions)
    memcpy(c->contributions, result->feature_contributions,
           result->feature_count * sizeof *c->contributions);
  return true;
}

/* The reasons of one result (explain/vd_reasons.h decides what they say), written into the parts
 * buffer once: the response and the trace carry the same text. */
static void write_reasons(const vd_ruleset *rs, const vd_model *model, const json_t *request,
                          const candidate_state *c, vd_json_emit *e) {
  bool scored = c->scored && c->contributions;
  vd_reasons_write(&(vd_reasons_input){.ruleset = rs,
                                       .outcome = c->outcome,
                                       .model = scored ? model : NULL,
                                       .contributions = scored ? c->contributions : NULL,
                                       .request = request,
                                       .selected = c->eligible && c->rank > 0},
                   e);
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

/* A span of the parts buffer: one piece of text written once and copied where it goes. */
typedef struct span {
  size_t at, len;
} span;

static void emit_span(vd_json_emit *e, const vd_buf *parts, span s) {
  vd_json_emit_raw(e, parts->data + s.at, s.len);
}

/* One emitter writing one value at the end of the parts buffer; finish_part gives its span. */
static size_t begin_part(vd_json_emit *e, vd_buf *parts) {
  vd_json_emit_text(e, parts);
  return parts->len;
}

static bool finish_part(vd_json_emit *e, const vd_buf *parts, size_t at, span *out) {
  *out = (span){at, parts->len - at};
  return vd_json_emit_done(e);
}

static void emit_rank(vd_json_emit *e, const candidate_state *c) {
  if (c->rank)
    vd_json_emit_integer(e, (json_int_t)c->rank);
  else
    vd_json_emit_null(e);
}

/* The trace's record of one candidate (vd_trace.h). */
static void write_record(const candidate_state *c, const vd_buf *parts, span reasons,
                         vd_json_emit *e) {
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "candidate", c->def->id);
  vd_json_emit_member_string(e, "treatment", c->def->treatment);
  vd_json_emit_key(e, "rules");
  vd_rules_outcome_write(c->outcome, e);
  vd_json_emit_key(e, "model");
  if (c->model_len)
    emit_span(e, parts, (span){c->model_at, c->model_len});
  else
    vd_json_emit_null(e);
  vd_json_emit_key(e, "reasons");
  emit_span(e, parts, reasons);
  vd_json_emit_key(e, "outcome");
  vd_json_emit_object(e);
  vd_json_emit_member_bool(e, "eligible", c->eligible);
  vd_json_emit_member_string(e, "action", c->action);
  vd_json_emit_member_real(e, "score", c->score);
  vd_json_emit_key(e, "rank");
  emit_rank(e, c);
  vd_json_emit_member_string(e, "decided_by", vd_rules_outcome_decided_by(c->outcome));
  vd_json_emit_end(e);
  if (c->fallback) {
    vd_json_emit_key(e, "fallback");
    vd_trace_write_fallback(e, c->fallback, c->model_error);
  }
  vd_json_emit_end(e);
}

/* One element of the response's results (pipeline header comment); explanation: the trace
 * record, with "explain": "full". */
static void write_result(const candidate_state *c, const vd_buf *parts, span reasons,
                         const span *explanation, vd_json_emit *e) {
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "candidate", c->def->id);
  vd_json_emit_member_bool(e, "eligible", c->eligible);
  vd_json_emit_key(e, "score");
  if (c->eligible)
    vd_json_emit_real(e, c->score);
  else
    vd_json_emit_null(e);
  vd_json_emit_key(e, "rank");
  emit_rank(e, c);
  vd_json_emit_member_string(e, "action", c->action);
  vd_json_emit_key(e, "reasons");
  emit_span(e, parts, reasons);
  const char *route = vd_rules_outcome_value(c->outcome, VD_ACTION_ROUTE, NULL);
  if (route) {
    vd_json_emit_member_string(e, "route", route);
  }
  if (c->scored) {
    vd_json_emit_key(e, "model");
    vd_json_emit_object(e);
    vd_json_emit_member_real(e, "p_treatment", c->p_treatment);
    vd_json_emit_member_real(e, "p_control", c->p_control);
    vd_json_emit_member_real(e, "uplift", c->uplift);
    vd_json_emit_member_real(e, "margin", c->margin);
    vd_json_emit_end(e);
  }
  if (explanation) {
    vd_json_emit_key(e, "explanation");
    emit_span(e, parts, *explanation);
  }
  vd_json_emit_end(e);
}

/* The response body (pipeline header comment): the results in rank order, then the ineligible
 * candidates; capped candidates are only in the trace. */
static void write_response(const char *decision_id, const vd_ruleset *rs, const vd_model *model,
                           const char *fallback, const char *fallback_message,
                           candidate_state *const *order, size_t cap, const candidate_state *cs,
                           size_t n, const vd_buf *parts, const span *reasons, const span *records,
                           bool full, vd_json_emit *e) {
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "decision_id", decision_id);
  vd_json_emit_key(e, "results");
  vd_json_emit_array(e);
  for (size_t k = 0; k < cap + n; k++) {
    size_t i = k < cap ? (size_t)(order[k] - cs) : k - cap;
    if (k >= cap && cs[i].eligible) continue;
    write_result(&cs[i], parts, reasons[i], full ? &records[i] : NULL, e);
  }
  vd_json_emit_end(e);
  vd_json_emit_key(e, "ruleset");
  vd_trace_write_versioned(e, vd_ruleset_name(rs), vd_ruleset_version(rs));
  vd_json_emit_key(e, "model");
  if (model)
    vd_trace_write_versioned(e, vd_model_name(model), vd_model_version(model));
  else
    vd_json_emit_null(e);
  vd_json_emit_key(e, "fallback");
  vd_trace_write_fallback(e, fallback, fallback_message);
  vd_json_emit_end(e);
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

/* The trees for callers that want them: the trace parsed from its text (which reads back exactly:
 * shortest round-trip reals, keys in order), the response the same object as trace.response. */
static bool parse_trees(vd_decision *out) {
  out->trace = json_loadb(out->trace_text, out->trace_len, 0, NULL);
  out->response = json_incref(json_object_get(out->trace, "response"));
  return out->trace && out->response;
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
  span *reasons = NULL; /* and the records after them: n each */
  vd_buf parts = {.data = malloc(PARTS_CAPACITY), .capacity = PARTS_CAPACITY};
  if (!parts.data) parts.capacity = 0;
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
      vd_error request_error;
      scored_any = true;
      if (!score_candidate(model, request, c, &result, &parts, &request_error)) {
        /* the client's mistake: a 400 naming the field */
        if (violations) vd_diags_add(violations, &request_error);
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

  /* 6. Response and trace, written as text straight from the candidates' state: each
   * candidate's reasons and record once into the parts buffer, the response from them, then the
   * trace around copies of both (no jansson tree is built, walked or freed). */
  reasons = calloc(2 * n, sizeof *reasons);
  if (!reasons) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  span *records = reasons + n, response = {0};
  bool written = true;
  for (size_t i = 0; i < n; i++) {
    vd_json_emit e;
    size_t at = begin_part(&e, &parts);
    write_reasons(rs, model, request, &cs[i], &e);
    written = finish_part(&e, &parts, at, &reasons[i]) && written;
    at = begin_part(&e, &parts);
    write_record(&cs[i], &parts, reasons[i], &e);
    written = finish_part(&e, &parts, at, &records[i]) && written;
  }
  vd_json_emit e;
  size_t at = begin_part(&e, &parts);
  write_response(in->decision_id, rs, model, fallback, fallback_message, order, cap, cs, n, &parts,
                 reasons, records, full, &e);
  written = finish_part(&e, &parts, at, &response) && written;

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
  vd_buf trace = {.data = malloc(parts.len + TRACE_HEAD_ROOM),
                  .capacity = parts.len + TRACE_HEAD_ROOM};
  if (!trace.data) trace.capacity = 0;
  vd_json_emit_text(&e, &trace);
  vd_trace_write_head(&e, &header, in->request, in->mask);
  vd_json_emit_key(&e, "candidates");
  vd_json_emit_array(&e);
  for (size_t i = 0; i < n; i++) emit_span(&e, &parts, records[i]);
  vd_json_emit_end(&e);
  vd_trace_write_cap(&e, &header);
  vd_json_emit_key(&e, "response");
  emit_span(&e, &parts, response);
  size_t response_end = trace.len;
  uint64_t t_end = vd_monotonic_ns();
  vd_trace_write_timings(&e, (double)(t_validated - t0) / 1e3,
                         (double)(t_rules_done - t_validated - model_ns) / 1e3,
                         (double)model_ns / 1e3, (double)(t_end - t0) / 1e3);
  vd_json_emit_end(&e);
  written = vd_json_emit_done(&e) && written;
  if (!written) {
    vd_buf_free(&trace);
    vd_error_set(err, "out of memory writing the response and the trace");
    goto done;
  }
  out->trace_len = trace.len;
  out->response_start = response_end - response.len;
  out->response_len = response.len;
  out->trace_text = vd_buf_take(&trace);
  if (!in->text_only && !parse_trees(out)) {
    vd_decision_clear(out);
    vd_error_set(err, "out of memory");
    goto done;
  }
  out->subject_id = vd_trace_subject_id(in->request, in->mask, out->masked_subject_id,
                                        sizeof out->masked_subject_id);
  out->ruleset_version = vd_ruleset_version(rs);
  out->model_version = model ? vd_model_version(model) : NULL;
  count_metrics(in->metrics, cs, n, fallback);
  status = VD_PIPELINE_OK;
done:
  if (cs)
    for (size_t i = 0; i < n; i++) {
      vd_rules_outcome_free(cs[i].outcome);
      free(cs[i].contributions);
    }
  if (have_result) vd_model_result_free(&result);
  vd_rules_frame_free(frame);
  free(cs);
  free(order);
  free(defs);
  free(reasons);
  vd_buf_free(&parts);
  json_decref(request);
  return status;
}
