/* verdict shadow: what-if evaluation of a candidate rule file (and model) on logged traffic.
 * See vd_replay.h and README "Explanations, replay and shadow evaluation". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vd_args.h"
#include "vd_replay.h"
#include "vd_store.h"
#include "vd_trace.h"

enum { MAX_KEYS = 512, DEFAULT_SAMPLE = 3 };

/* A tally of string keys ("mens-email\toffer\tdeny", "rule-id"). */
typedef struct tally {
  char *keys[MAX_KEYS];
  size_t counts[MAX_KEYS];
  size_t n;
} tally;

static void tally_add(tally *t, const char *key) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->keys[i], key) == 0) {
      t->counts[i]++;
      return;
    }
  if (t->n == MAX_KEYS) return;
  t->keys[t->n] = strdup(key);
  if (t->keys[t->n]) t->counts[t->n++] = 1;
}

static void tally_free(tally *t) {
  for (size_t i = 0; i < t->n; i++) free(t->keys[i]);
}

/* Sorts by count, largest first (stable by first appearance). */
static void tally_sort(tally *t) {
  for (size_t i = 1; i < t->n; i++)
    for (size_t j = i; j > 0 && t->counts[j] > t->counts[j - 1]; j--) {
      char *k = t->keys[j];
      size_t c = t->counts[j];
      t->keys[j] = t->keys[j - 1];
      t->counts[j] = t->counts[j - 1];
      t->keys[j - 1] = k;
      t->counts[j - 1] = c;
    }
}

typedef struct scores {
  double *v;
  size_t n, cap;
} scores;

static void scores_add(scores *s, double x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    double *v = realloc(s->v, cap * sizeof *v);
    if (!v) return;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(const scores *s, double q) {
  if (!s->n) return NAN;
  size_t i = (size_t)floor(q * (double)(s->n - 1) + 0.5);
  return s->v[i];
}

static double mean(const scores *s) {
  double sum = 0;
  for (size_t i = 0; i < s->n; i++) sum += s->v[i];
  return s->n ? sum / (double)s->n : NAN;
}

/* A statistic of no scores (NaN) is no number: null in the JSON report, not 0.0. */
static json_t *number_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

static const json_t *candidate_record(const json_t *trace, const char *id) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(trace, "candidates"), i, c) {
    const char *cid = json_string_value(json_object_get(c, "candidate"));
    if (cid && strcmp(cid, id) == 0) return c;
  }
  return NULL;
}

static const json_t *rule_entry(const json_t *candidate, const char *id) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(json_object_get(candidate, "rules"), "rules"), i, r) {
    const char *rid = json_string_value(json_object_get(r, "id"));
    if (rid && strcmp(rid, id) == 0) return r;
  }
  return NULL;
}

/* What a decision's outcome is made of, per kind: a promotions candidate's action (and its
 * rank, which counts as a change but is not a transition of its own); a triage request's route,
 * priority, handled_by and the escalation task it asks for. A transition is labelled with the
 * candidate id (promotions: "mens-email: offer -> deny") or the field (triage: "route:
 * general_support -> payments"). */
typedef struct outcome_kind {
  const char *fields[4];
  size_t field_count;
  bool label_by_candidate;
} outcome_kind;

static const outcome_kind promotions_outcome = {{"action"}, 1, true};
static const outcome_kind triage_outcome = {
    {"route", "priority", "handled_by", "escalate"}, 4, false};

static const char *field_of(const json_t *candidate, const char *field) {
  const json_t *v = json_object_get(json_object_get(candidate, "outcome"), field);
  return json_is_string(v) ? json_string_value(v) : json_is_null(v) ? "none" : "absent";
}

static const char *action_of(const json_t *candidate) { return field_of(candidate, "action"); }

/* The score whose distribution is reported: a promotions candidate's final score, a triage
 * request's model confidence (absent when the rules settled it before the model). NULL for a
 * promotions candidate a rule took out before the model: its trace holds a score of 0 that
 * nothing computed, which is no score of the model's. */
static const json_t *score_of(const json_t *candidate) {
  const json_t *o = json_object_get(candidate, "outcome");
  if (json_object_get(o, "score")) {
    bool unscored = json_is_false(json_object_get(o, "eligible")) &&
                    json_is_null(json_object_get(candidate, "model"));
    return unscored ? NULL : json_object_get(o, "score");
  }
  return json_object_get(json_object_get(candidate, "model"), "confidence");
}

/* The rule that settled a candidate and so ended its evaluation: the deny/allow that decided it,
 * else the first matched route (triage: a route before the model skips the rules after it);
 * NULL when none did. */
static const char *settled_by(const json_t *candidate) {
  const json_t *rules = json_object_get(candidate, "rules");
  const json_t *by = json_object_get(rules, "decided_by");
  if (json_is_string(by)) return json_string_value(by);
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(rules, "rules"), i, r) {
    const char *action = json_string_value(json_object_get(r, "action"));
    if (json_is_true(json_object_get(r, "matched")) && action && strcmp(action, "route") == 0)
      return json_string_value(json_object_get(r, "id"));
  }
  return NULL;
}

/* The rules behind one candidate's change: every rule whose `matched` differs between the two
 * traces, labelled new (absent from the logged version), removed (absent from the candidate) or
 * changed (its stage, condition or action differ). A rule of both versions that one side did not
 * evaluate did not stop applying there: another rule settled the candidate first, and the cause
 * says which ("low-uplift not evaluated (decided earlier by high-spender)"). old_rules /
 * new_rules: id → rule_definition(). */
static void attribute(const json_t *before, const json_t *after, const json_t *old_rules,
                      const json_t *new_rules, tally *causes) {
  const json_t *sides[2] = {after, before};
  for (int side = 0; side < 2; side++) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(json_object_get(sides[side], "rules"), "rules"), i, r) {
      const char *id = json_string_value(json_object_get(r, "id"));
      const json_t *other = rule_entry(sides[1 - side], id);
      bool here = json_is_true(json_object_get(r, "matched"));
      bool there = other && json_is_true(json_object_get(other, "matched"));
      if (here == there || (side == 1 && other)) continue; /* both sides: counted once */
      bool now = side == 0 ? here : there;
      const json_t *was = json_object_get(old_rules, id), *is = json_object_get(new_rules, id);
      const char *label = !was  ? " (new)"
                          : !is ? " (removed)"
                          : json_is_string(was) && json_is_string(is) && !json_equal(was, is)
                              ? " (changed)"
                              : "";
      const char *by = NULL; /* a rule of both versions evaluated on one side only: who settled */
      if (!other && was && is) by = settled_by(sides[1 - side]);
      if (!other && was && is && !by) by = "another rule";
      char key[320];
      if (by && !now)
        snprintf(key, sizeof key, "%s%s not evaluated (decided earlier by %s)", id, label, by);
      else if (by)
        snprintf(key, sizeof key, "%s%s now applies (before: not evaluated, decided earlier by %s)",
                 id, label, by);
      else
        snprintf(key, sizeof key, "%s%s %s", id, label, now ? "now applies" : "no longer applies");
      tally_add(causes, key);
    }
  }
}

/* id → "stage|when|action|argument" for every rule of a ruleset, into defs. */
static void rule_definitions(const vd_ruleset *rs, json_t *defs) {
  for (size_t i = 0; i < vd_ruleset_rule_count(rs); i++) {
    char *argument = json_dumps(vd_ruleset_rule_argument(rs, i), JSON_ENCODE_ANY | JSON_COMPACT);
    size_t n = strlen(vd_ruleset_rule_when(rs, i)) + (argument ? strlen(argument) : 0) + 64;
    char *text = malloc(n);
    if (text) {
      snprintf(text, n, "%s|%s|%s|%s", vd_stage_name(vd_ruleset_rule_stage(rs, i)),
               vd_ruleset_rule_when(rs, i), vd_action_name(vd_ruleset_rule_action(rs, i)),
               argument ? argument : "");
      json_object_set_new(defs, vd_ruleset_rule_id(rs, i), json_string(text));
    }
    free(text);
    free(argument);
  }
}

/* The logged ruleset's definitions (from the store), cached by version; when the store lacks it,
 * the rule ids the trace evaluated (then no rule can be called "changed"). */
typedef struct logged_rules {
  char version[80];
  json_t *defs;
} logged_rules;

static const json_t *logged_definitions(logged_rules *cache, const char *data_dir,
                                        const json_t *trace) {
  const char *version =
      json_string_value(json_object_get(json_object_get(trace, "ruleset"), "version"));
  if (!version) version = "";
  if (cache->defs && strcmp(cache->version, version) == 0) return cache->defs;
  json_decref(cache->defs);
  cache->defs = json_object();
  snprintf(cache->version, sizeof cache->version, "%s", version);
  char path[4096];
  vd_error e;
  vd_ruleset *rs = NULL;
  if (*version && vd_store_path(data_dir, "rulesets", version, path, sizeof path, &e) &&
      strlen(path) + 14 < sizeof path) {
    strcat(path, "/ruleset.json");
    rs = vd_ruleset_load(path, NULL);
  }
  if (rs) {
    rule_definitions(rs, cache->defs);
    vd_ruleset_free(rs);
    return cache->defs;
  }
  size_t i, k;
  json_t *c, *r;
  json_array_foreach(json_object_get(trace, "candidates"), i, c)
      json_array_foreach(json_object_get(json_object_get(c, "rules"), "rules"), k, r) {
    const char *id = json_string_value(json_object_get(r, "id"));
    if (id) json_object_set_new(cache->defs, id, json_true());
  }
  return cache->defs;
}

static int usage(FILE *err, const char *message) {
  return vd_args_usage_error("shadow", err, "%s", message);
}

static const char *decided_by(const json_t *outcome) {
  const json_t *by = json_object_get(outcome, "decided_by");
  return json_is_string(by) ? json_string_value(by) : "the model";
}

/* "score 0.0709", or "no score" for a candidate a rule took out before the model. */
static const char *score_text(const json_t *candidate, char *buf, size_t size) {
  const json_t *score = score_of(candidate);
  if (!json_is_number(score)) return "no score";
  snprintf(buf, size, "score %.4f", json_number_value(score));
  return buf;
}

static void print_candidate_change(FILE *out, const outcome_kind *k, const json_t *b,
                                   const json_t *a) {
  if (k == &promotions_outcome) {
    const json_t *ob = json_object_get(b, "outcome"), *oa = json_object_get(a, "outcome");
    char sb[32], sa[32];
    fprintf(out, "    %s: %s (%s, decided by %s) -> %s (%s, decided by %s)\n",
            json_string_value(json_object_get(b, "candidate")), action_of(b),
            score_text(b, sb, sizeof sb), decided_by(ob), action_of(a),
            score_text(a, sa, sizeof sa), decided_by(oa));
    return;
  }
  for (size_t f = 0; f < k->field_count; f++) {
    const char *before = field_of(b, k->fields[f]), *after = field_of(a, k->fields[f]);
    fprintf(out, "    %-10s %s%s%s\n", k->fields[f], before, strcmp(before, after) ? " -> " : "",
            strcmp(before, after) ? after : "");
  }
}

/* Everything the report counts. */
typedef struct shadow_run {
  const vd_deployment *candidate;
  const outcome_kind *kind;
  vd_replayer *replayer;
  const char *data_dir;
  json_t *new_rules;
  logged_rules logged;
  char first_version[80];
  size_t other_versions;
  size_t limit, sample;
  size_t compared, changed, failed, candidates_changed;
  size_t field_changed[4]; /* decisions whose outcome field f changed */
  tally transitions, causes;
  scores before_scores, after_scores;
  json_t *samples;
} shadow_run;

static void add_score(scores *s, const json_t *candidate) {
  const json_t *v = candidate ? score_of(candidate) : NULL;
  if (json_is_number(v)) scores_add(s, json_number_value(v));
}

/* The text report when no logged decision was re-decided: nothing to compare, no distribution
 * (a mean over 0 scores is no number). */
static void print_no_decisions(FILE *out, const char *deployment, const char *since,
                               const char *until, size_t failed) {
  fprintf(out, "no decisions: the decision log holds no decision of deployment %s", deployment);
  if (since) fprintf(out, " from %s", since);
  if (until) fprintf(out, " until %s", until);
  if (failed)
    fprintf(out, " that the candidate could re-decide (%zu invalid on the candidate)", failed);
  fprintf(out, "; nothing to compare\n");
}

/* One logged decision re-decided on the candidate version. */
/* A stored decision that cannot be read counts among those that could not be replayed. */
static bool shadow_damaged(void *ctx, const char *id, const vd_error *why) {
  (void)id;
  (void)why;
  shadow_run *run = ctx;
  run->failed++;
  return !run->limit || run->compared + run->failed < run->limit;
}

static bool shadow_visit(void *ctx, const json_t *trace) {
  shadow_run *run = ctx;
  const char *name =
      json_string_value(json_object_get(json_object_get(trace, "deployment"), "name"));
  if (!name || strcmp(name, vd_deployment_name(run->candidate)) != 0) return true;
  if (run->limit && run->compared + run->failed >= run->limit) return false;
  vd_error de = {0};
  json_t *again = vd_replayer_decide_on(run->replayer, run->candidate, trace, &de);
  if (!again) {
    run->failed++;
    return true;
  }
  run->compared++;
  const json_t *old_rules = logged_definitions(&run->logged, run->data_dir, trace);
  if (!*run->first_version)
    snprintf(run->first_version, sizeof run->first_version, "%s", run->logged.version);
  else if (strcmp(run->first_version, run->logged.version) != 0)
    run->other_versions++;
  const outcome_kind *k = run->kind;
  bool decision_changed = false, field_changed[4] = {false};
  size_t i;
  json_t *b;
  json_array_foreach(json_object_get(trace, "candidates"), i, b) {
    const char *id = json_string_value(json_object_get(b, "candidate"));
    const json_t *a = candidate_record(again, id);
    add_score(&run->before_scores, b);
    add_score(&run->after_scores, a);
    const json_t *rank_b = json_object_get(json_object_get(b, "outcome"), "rank");
    const json_t *rank_a = json_object_get(json_object_get(a, "outcome"), "rank");
    bool changed =
        !a || (rank_b || rank_a ? !rank_b || !rank_a || !json_equal(rank_b, rank_a) : false);
    bool transition = false;
    for (size_t f = 0; f < k->field_count; f++) {
      const char *before = field_of(b, k->fields[f]);
      const char *after = a ? field_of(a, k->fields[f]) : "absent";
      if (strcmp(before, after) == 0 && !(changed && k->label_by_candidate && !transition))
        continue; /* (a rank-only change of a candidate still shows as "offer -> offer") */
      if (strcmp(before, after) != 0) field_changed[f] = true;
      changed = transition = true;
      char key[512];
      snprintf(key, sizeof key, "%s: %s -> %s", k->label_by_candidate ? id : k->fields[f], before,
               after);
      tally_add(&run->transitions, key);
    }
    if (!changed) continue;
    decision_changed = true;
    run->candidates_changed++;
    if (a) attribute(b, a, old_rules, run->new_rules, &run->causes);
  }
  for (size_t f = 0; f < k->field_count; f++) run->field_changed[f] += field_changed[f];
  if (decision_changed) {
    run->changed++;
    if (json_array_size(run->samples) < run->sample)
      json_array_append_new(run->samples, json_pack("{s:O, s:O}", "before", trace, "after", again));
  }
  json_decref(again);
  return true;
}

int vd_verb_shadow(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"deployment", true, NULL, "the deployment folder (its deployment.yaml: candidates...)"},
      {"rules", true, NULL, "the candidate rule file (default: the deployment's)"},
      {"model", true, NULL, "the candidate model bundle folder (default: the deployment's)"},
      {"since", true, NULL, "logged decisions from this RFC 3339 time on"},
      {"until", true, NULL, "... up to (not including) this time"},
      {"limit", true, NULL, "at most this many decisions (oldest first; default all)"},
      {"sample", true, NULL, "changed decisions shown in full (default 3)"},
      {"data-dir", true, NULL, "the data folder (decision log)"},
      {"config", true, NULL, "the server's config file (its data_dir and decision_log)"},
      {"json", false, NULL, "print the report as JSON (samples with both full traces)"},
  };
  size_t n = sizeof options / sizeof options[0];
  size_t npos = 0;
  static const vd_verb_help help = {
      "shadow",
      "usage: verdict shadow --deployment DIR --rules NEW.yaml [--model NEWDIR] [--since T]\n"
      "                      [--until T] [--limit N] [--data-dir DIR | --config FILE]\n\n"
      "Re-decides logged decisions of DIR's deployment with a candidate rule file and/or\n"
      "model (the stored requests, same decision time) and reports, before anything ships:\n"
      "how many decisions change, by candidate and action (\"mens-email: 312 offer -> deny\"),\n"
      "or for a triage deployment by route, priority, handled_by and escalation task\n"
      "(\"route: 12 general_support -> payments\"), which new or changed rules caused it, a\n"
      "sample of changed decisions, and how the score (triage: model confidence)\n"
      "distribution shifts. Nothing is written and no LLM job is submitted: the log and the\n"
      "store stay as they are.",
      "exit status: 0 report printed, 1 the candidate (its rules or model) or the log cannot be\n"
      "read, 2 usage"};
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, NULL, 0, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  const char *dir = vd_args_get(options, n, "deployment");
  const char *rules = vd_args_get(options, n, "rules");
  const char *model = vd_args_get(options, n, "model");
  const char *data_dir = vd_args_get(options, n, "data-dir");
  const char *config = vd_args_get(options, n, "config");
  bool as_json = vd_args_get(options, n, "json") != NULL;
  if (!dir) return usage(err, "--deployment DIR is required");
  if (!rules && !model) return usage(err, "give --rules NEW.yaml and/or --model NEWDIR");
  if (!data_dir && !config) return usage(err, "give --data-dir DIR or --config FILE");
  const char *since = vd_args_get(options, n, "since"), *until = vd_args_get(options, n, "until");
  int64_t since_us = 0, until_us = 0;
  if ((since && !vd_replay_parse_time("--since", since, &since_us, &e)) ||
      (until && !vd_replay_parse_time("--until", until, &until_us, &e)))
    return usage(err, e.message);
  size_t limit = 0, sample = DEFAULT_SAMPLE;
  const char *numbers[2] = {vd_args_get(options, n, "limit"), vd_args_get(options, n, "sample")};
  size_t *targets[2] = {&limit, &sample};
  for (int i = 0; i < 2; i++) {
    if (!numbers[i]) continue;
    char *end = NULL;
    long long v = strtoll(numbers[i], &end, 10);
    if (end == numbers[i] || *end || v < (i == 0 ? 1 : 0))
      return usage(err,
                   i == 0 ? "--limit must be an integer >= 1" : "--sample must be an integer >= 0");
    *targets[i] = (size_t)v;
  }

  /* A model that does not load is refused, as on a reload: falling back to rules only would
   * report every decision as the rules' (scores 0) instead of the candidate's. */
  vd_diags diags = {0};
  vd_deployment *candidate = vd_deployment_load(
      dir,
      &(vd_deployment_load_options){.rules_path = rules, .model_dir = model, .require_model = true},
      &diags);
  if (!candidate) {
    fprintf(err, "verdict shadow: the candidate version does not load:\n");
    for (size_t i = 0; i < diags.count; i++) {
      char line[VD_ERROR_MESSAGE_MAX];
      vd_error_format(&diags.items[i], line, sizeof line);
      fprintf(err, "  %s\n", line);
    }
    vd_diags_free(&diags);
    return 1;
  }
  vd_diags_free(&diags);
  char data[4096];
  vd_decision_log *log = vd_replay_open_log(data_dir, config, data, sizeof data, &e);
  if (!log) {
    fprintf(err, "verdict shadow: %s\n", e.message);
    vd_deployment_release(candidate);
    return 1;
  }
  const vd_ruleset *rs = vd_deployment_ruleset(candidate);
  bool triage = strcmp(vd_deployment_kind(candidate), "triage") == 0;
  shadow_run run = {.candidate = candidate,
                    .kind = triage ? &triage_outcome : &promotions_outcome,
                    .replayer = vd_replayer_new(data),
                    .data_dir = data,
                    .new_rules = json_object(),
                    .limit = limit,
                    .sample = sample,
                    .samples = json_array()};
  rule_definitions(rs, run.new_rules);
  vd_decision_query q = {.kind = vd_deployment_kind(candidate),
                         .has_since = since != NULL,
                         .since_us = since_us,
                         .has_until = until != NULL,
                         .until_us = until_us};
  bool ok =
      run.replayer && vd_decision_log_foreach(log, &q, shadow_visit, shadow_damaged, &run, &e);
  vd_decision_log_close(log);
  if (!ok) fprintf(err, "verdict shadow: reading the decision log: %s\n", e.message);

  tally *transitions = &run.transitions, *causes = &run.causes;
  scores *before_scores = &run.before_scores, *after_scores = &run.after_scores;
  size_t compared = run.compared, changed = run.changed, failed = run.failed;
  size_t candidates_changed = run.candidates_changed;
  json_t *samples = run.samples;
  const outcome_kind *k = run.kind;
  tally_sort(transitions);
  tally_sort(causes);
  if (before_scores->n) qsort(before_scores->v, before_scores->n, sizeof(double), cmp_double);
  if (after_scores->n) qsort(after_scores->v, after_scores->n, sizeof(double), cmp_double);
  static const double qs[] = {0.1, 0.5, 0.9};
  const char *score_name = triage ? "model confidence" : "score";
  if (as_json) {
    json_t *t = json_array(), *c = json_array(), *dist = json_object(), *by = json_object();
    for (size_t i = 0; i < transitions->n; i++) {
      char *key = transitions->keys[i];
      char *colon = strstr(key, ": "), *arrow = strstr(key, " -> ");
      json_t *entry =
          json_pack("{s:s%, s:s%, s:s, s:I}", k->label_by_candidate ? "candidate" : "field", key,
                    (size_t)(colon - key), "before", colon + 2, (size_t)(arrow - colon - 2),
                    "after", arrow + 4, "count", (json_int_t)transitions->counts[i]);
      if (k->label_by_candidate) json_object_set_new(entry, "field", json_string(k->fields[0]));
      json_array_append_new(t, entry);
    }
    for (size_t f = 0; f < k->field_count; f++)
      json_object_set_new(by, k->fields[f], json_integer((json_int_t)run.field_changed[f]));
    for (size_t i = 0; i < causes->n; i++)
      json_array_append_new(c, json_pack("{s:s, s:I}", "rule", causes->keys[i], "candidates",
                                         (json_int_t)causes->counts[i]));
    const scores *sets[2] = {before_scores, after_scores};
    const char *names[2] = {"before", "after"};
    for (int s = 0; s < 2; s++)
      json_object_set_new(
          dist, names[s],
          json_pack("{s:I, s:o, s:o, s:o, s:o}", "count", (json_int_t)sets[s]->n, "mean",
                    number_or_null(mean(sets[s])), "p10", number_or_null(quantile(sets[s], 0.1)),
                    "p50", number_or_null(quantile(sets[s], 0.5)), "p90",
                    number_or_null(quantile(sets[s], 0.9))));
    json_object_set_new(dist, "of", json_string(score_name));
    json_t *report = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:O}", "kind", vd_deployment_kind(candidate),
        "compared", (json_int_t)compared, "changed", (json_int_t)changed, "candidates_changed",
        (json_int_t)candidates_changed, "failed", (json_int_t)failed, "changed_by_field", by,
        "transitions", t, "causes", c, "scores", dist, "samples", samples);
    char *text = json_dumps(report, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    if (text) fprintf(out, "%s\n", text);
    free(text);
    json_decref(report);
  } else {
    fprintf(out, "shadow evaluation of %s%s%s%s%s on %zu logged decisions of %s\n",
            rules ? "rules " : "", rules ? rules : "", rules && model ? " and " : "",
            model ? "model " : "", model ? model : "", compared, vd_deployment_name(candidate));
    if (!compared) {
      print_no_decisions(out, vd_deployment_name(candidate), since, until, failed);
      goto done;
    }
    fprintf(out, "  rule set as logged %.12s…%s -> candidate %.12s…\n", run.first_version,
            run.other_versions ? " (and others)" : "", vd_ruleset_version(rs));
    fprintf(out, "decisions changed: %zu of %zu (%.1f%%)", changed, compared,
            compared ? 100.0 * (double)changed / (double)compared : 0.0);
    if (triage) {
      for (size_t f = 0; f < k->field_count; f++)
        fprintf(out, "%s%s %zu", f ? ", " : "; by field: ", k->fields[f], run.field_changed[f]);
      fputc('\n', out);
    } else {
      fprintf(out, "; candidates changed: %zu\n", candidates_changed);
    }
    if (failed)
      fprintf(out,
              "decisions that could not be re-decided (request invalid on the candidate): %zu\n",
              failed);
    if (transitions->n)
      fprintf(out, "\n%s:\n", triage ? "by field (decisions)" : "by candidate and action");
    /* grouped by label (candidate or field, in the kind's field order), largest first within */
    for (size_t f = 0; f < (k->label_by_candidate ? 1 : k->field_count); f++)
      for (size_t i = 0; i < transitions->n; i++) {
        char *key = transitions->keys[i];
        char *colon = strstr(key, ": ");
        size_t label = (size_t)(colon - key);
        if (!k->label_by_candidate &&
            (strlen(k->fields[f]) != label || strncmp(key, k->fields[f], label) != 0))
          continue;
        fprintf(out, "  %.*s: %zu %s\n", (int)label, key, transitions->counts[i], colon + 2);
      }
    if (causes->n)
      fprintf(out, "\ncaused by (%s affected):\n", triage ? "decisions" : "candidates");
    for (size_t i = 0; i < causes->n; i++)
      fprintf(out, "  %-60s %zu\n", causes->keys[i], causes->counts[i]);
    fprintf(out, "\n%s distribution (model-scored)   mean      p10       p50       p90\n",
            score_name);
    const scores *sets[2] = {before_scores, after_scores};
    const char *names[2] = {"before", "after "};
    for (int s = 0; s < 2; s++) {
      fprintf(out, "  %s (%6zu scores)", names[s], sets[s]->n);
      if (!sets[s]->n) { /* a mean of nothing is no number: say so instead of printing nan */
        fprintf(out, "          no scores\n");
        continue;
      }
      fprintf(out, "          %+8.4f", mean(sets[s]));
      for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++)
        fprintf(out, "  %+8.4f", quantile(sets[s], qs[q]));
      fputc('\n', out);
    }
    if (before_scores->n && after_scores->n)
      fprintf(out, "  shift of the mean: %+.4f\n", mean(after_scores) - mean(before_scores));
    size_t i;
    json_t *s;
    if (json_array_size(samples)) fprintf(out, "\nsample of changed decisions:\n");
    json_array_foreach(samples, i, s) {
      const json_t *b = json_object_get(s, "before"), *a = json_object_get(s, "after");
      fprintf(out, "  %s\n", json_string_value(json_object_get(b, "id")));
      size_t j;
      json_t *cb;
      json_array_foreach(json_object_get(b, "candidates"), j, cb) {
        const json_t *ca = candidate_record(a, json_string_value(json_object_get(cb, "candidate")));
        if (ca) print_candidate_change(out, k, cb, ca);
      }
    }
    if (json_array_size(samples)) fprintf(out, "  (both full traces of each: --json)\n");
  }
done:
  json_decref(samples);
  json_decref(run.new_rules);
  json_decref(run.logged.defs);
  tally_free(transitions);
  tally_free(causes);
  free(before_scores->v);
  free(after_scores->v);
  vd_replayer_free(run.replayer);
  vd_deployment_release(candidate);
  return ok ? 0 : 1;
}
