#include "vd_replay.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_cel.h"
#include "vd_config.h"
#include "vd_explain.h"
#include "vd_pipeline.h"
#include "vd_reasons.h"
#include "vd_store.h"
#include "vd_trace.h"
#include "vd_triage_pipeline.h"

enum { MAX_CACHED = 16, PAGE = 500, SHOWN_DIFFERENCES = 20 };

vd_decision_log *vd_replay_open_log(const char *data_dir, const char *config_path,
                                    char *data_dir_out, size_t size, vd_error *err) {
  char log_path[4096];
  vd_config *config = NULL;
  if (config_path) {
    config =
        vd_config_load_overridden(config_path, &(vd_config_overrides){.data_dir = data_dir}, err);
    if (!config) return NULL;
    snprintf(data_dir_out, size, "%s", config->data_dir);
    if (config->decision_log_path)
      snprintf(log_path, sizeof log_path, "%s", config->decision_log_path);
    else
      snprintf(log_path, sizeof log_path, "%s/decisions.db", config->data_dir);
  } else {
    snprintf(data_dir_out, size, "%s", data_dir);
    snprintf(log_path, sizeof log_path, "%s/decisions.db", data_dir);
  }
  vd_decision_log *log = NULL;
  if (access(log_path, R_OK) != 0) {
    vd_error_set(err, "no decision log at %s (is the data folder right?)", log_path);
  } else {
    vd_decision_log_config cfg = config ? config->decision_log : (vd_decision_log_config){0};
    cfg.path = log_path;
    cfg.retention_days = 0;   /* a tool never deletes decisions */
    cfg.shared_reader = true; /* nor keeps a running server from its journal */
    log = vd_decision_log_open(&cfg, err);
  }
  vd_config_free(config);
  return log;
}

/* A tool reads decisions.db; a server running on the same folder indexes what it answered a few
 * milliseconds later, so a decision answered just now may not be there yet. */
static const char not_indexed_hint[] =
    " (if a server runs on this folder and answered it just now, it is indexed within a few "
    "milliseconds: try again)";

bool vd_replay_parse_time(const char *name, const char *text, int64_t *us, vd_error *err) {
  vd_cel_value t;
  if (!text || !vd_cel_timestamp_parse(text, strlen(text), &t, NULL))
    return vd_error_field(err, name,
                          "%s must be an RFC 3339 time such as 2026-12-03T13:00:00Z, got '%s'",
                          name, text ? text : "");
  *us = t.v.time.seconds * 1000000 + t.v.time.nanos / 1000;
  return true;
}

/* A valid stand-in for a masked value. No rule or model reads a masked field
 * (vd_trace_mask_check), so any value the schema accepts decides the same; the stored (masked)
 * request is put back into the replayed trace afterwards. */
static json_t *stand_in(const vd_schema_field *f, const char *masked) {
  double bound = 0;
  switch (vd_schema_field_type(f)) {
    case VD_FIELD_ENUM:
      return vd_schema_field_enum_count(f) ? json_string(vd_schema_field_enum_value(f, 0)) : NULL;
    case VD_FIELD_INT:
      if (!vd_schema_field_min(f, &bound)) bound = 0;
      return json_integer((json_int_t)bound);
    case VD_FIELD_DOUBLE:
      if (!vd_schema_field_min(f, &bound)) bound = 0;
      return json_real(bound);
    case VD_FIELD_BOOL:
      return json_false();
    case VD_FIELD_STRING: { /* short, still distinct per value */
      char text[17];
      snprintf(text, sizeof text, "%s", masked + strlen("hmac-sha256:"));
      return json_string(text);
    }
    default:
      return NULL;
  }
}

static void unmask_section(const vd_schema *schema, const char *section, json_t *object) {
  const char *key;
  json_t *value;
  void *tmp;
  json_object_foreach_safe(object, tmp, key, value) {
    const char *text = json_string_value(value);
    if (!text || strncmp(text, "hmac-sha256:", 12) != 0) continue;
    char path[512];
    snprintf(path, sizeof path, "%s.%s", section, key);
    const vd_schema_field *f = vd_schema_find(schema, path);
    json_t *replacement = f ? stand_in(f, text) : NULL;
    if (replacement) json_object_set_new(object, key, replacement);
  }
}

/* The stored request with every masked value (top-level fields of each section) replaced. */
static json_t *unmasked_request(const vd_deployment *d, const json_t *stored) {
  const vd_schema *schema = vd_deployment_schema(d);
  json_t *request = json_deep_copy(stored);
  unmask_section(schema, "subject", json_object_get(request, "subject"));
  unmask_section(schema, "context", json_object_get(request, "context"));
  unmask_section(schema, "candidate", json_object_get(request, "candidate"));
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(request, "candidates"), i, c)
      unmask_section(schema, "candidate", c);
  return request;
}

static json_t *replay_promotions(const vd_deployment *d, const json_t *trace, const char *id,
                                 int64_t now, json_t *request, vd_error *err) {
  json_int_t cap = json_integer_value(json_object_get(trace, "max_results_cap"));
  vd_pipeline_input in = {.request = request,
                          .decision_id = id,
                          .now_us = now,
                          .max_results = cap > 0 ? (size_t)cap : 0};
  vd_decision decision = {0};
  vd_diags violations = {0};
  vd_pipeline_status st = vd_pipeline_decide(d, &in, &decision, &violations, err);
  if (st == VD_PIPELINE_INVALID) {
    char first[VD_ERROR_MESSAGE_MAX] = "";
    if (violations.count) vd_error_format(&violations.items[0], first, sizeof first);
    vd_error_set(err, "the stored request does not validate on this version: %s", first);
  }
  vd_diags_free(&violations);
  json_t *out = st == VD_PIPELINE_OK ? json_incref(decision.trace) : NULL;
  vd_decision_clear(&decision);
  return out;
}

static const vd_gazetteer *stored_gazetteer(vd_replayer *r, const char *version, vd_error *err);

/* The triage hot path again: rules + model on the stored (masked) text, the same id and time,
 * the gazetteer version the trace names; the escalation it asks for is recorded as requested
 * (no job id: nothing is ever submitted to the LLM layer). */
static json_t *replay_triage(vd_replayer *r, const vd_deployment *d, const json_t *trace,
                             const char *id, int64_t now, json_t *request, vd_error *err) {
  const json_t *record = json_array_get(json_object_get(trace, "candidates"), 0);
  const char *gz_version =
      json_string_value(json_object_get(json_object_get(trace, "gazetteer"), "version"));
  const vd_gazetteer *gz = NULL;
  if (gz_version && !(gz = stored_gazetteer(r, gz_version, err))) return NULL;
  vd_triage_input in = {
      .request = request,
      .decision_id = id,
      .now_us = now,
      .gazetteer = gz,
      .gazetteer_version = gz_version,
      .text_masked = true,
      .cards_masked = (size_t)json_integer_value(json_object_get(record, "cards_masked"))};
  vd_triage_decision decision = {0};
  vd_diags violations = {0};
  vd_pipeline_status st = vd_triage_decide(d, &in, &decision, &violations, err);
  if (st == VD_PIPELINE_INVALID) {
    char first[VD_ERROR_MESSAGE_MAX] = "";
    if (violations.count) vd_error_format(&violations.items[0], first, sizeof first);
    vd_error_set(err, "the stored request does not validate on this version: %s", first);
  }
  vd_diags_free(&violations);
  if (st == VD_PIPELINE_OK && decision.escalate) vd_triage_record_escalation(&decision, NULL, NULL);
  json_t *out = st == VD_PIPELINE_OK ? json_incref(decision.trace) : NULL;
  vd_triage_decision_clear(&decision);
  return out;
}

json_t *vd_replayer_decide_on(vd_replayer *r, const vd_deployment *d, const json_t *trace,
                              vd_error *err) {
  const char *id = json_string_value(json_object_get(trace, "id"));
  const char *kind = json_string_value(json_object_get(trace, "kind"));
  int64_t now = 0;
  if (!id || !vd_replay_parse_time(
                 "timestamp", json_string_value(json_object_get(trace, "timestamp")), &now, err)) {
    if (!id) vd_error_set(err, "the trace has no id");
    return NULL;
  }
  if (!kind || strcmp(kind, vd_deployment_kind(d)) != 0) {
    vd_error_set(err, "a %s decision cannot be re-decided on a %s deployment",
                 kind ? kind : "kind-less", vd_deployment_kind(d));
    return NULL;
  }
  const json_t *stored = json_object_get(trace, "request");
  json_t *request = unmasked_request(d, stored);
  json_t *out = strcmp(kind, "triage") == 0 ? replay_triage(r, d, trace, id, now, request, err)
                                            : replay_promotions(d, trace, id, now, request, err);
  json_decref(request);
  if (out) json_object_set_new(out, "request", json_deep_copy(stored)); /* as stored: masked */
  return out;
}

struct vd_replayer {
  char *data_dir;
  vd_deployment *cached[MAX_CACHED];
  size_t count, next;
  vd_gazetteer *gazetteer; /* the last stored gazetteer version used */
  char gazetteer_version[VD_SHA256_HEX_SIZE];
};

vd_replayer *vd_replayer_new(const char *data_dir) {
  vd_replayer *r = calloc(1, sizeof *r);
  if (r) r->data_dir = strdup(data_dir);
  if (r && !r->data_dir) {
    free(r);
    return NULL;
  }
  return r;
}

void vd_replayer_free(vd_replayer *r) {
  if (!r) return;
  for (size_t i = 0; i < r->count; i++) vd_deployment_release(r->cached[i]);
  vd_gazetteer_free(r->gazetteer);
  free(r->data_dir);
  free(r);
}

static const vd_deployment *stored_version(vd_replayer *r, const char *version, vd_error *err) {
  for (size_t i = 0; i < r->count; i++)
    if (strcmp(vd_deployment_version(r->cached[i]), version) == 0) return r->cached[i];
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load_stored(r->data_dir, version, &diags);
  if (!d) {
    char first[VD_ERROR_MESSAGE_MAX] = "unknown error";
    if (diags.count) vd_error_format(&diags.items[0], first, sizeof first);
    vd_error_set(err, "deployment version %s cannot be rebuilt: %s", version, first);
    vd_diags_free(&diags);
    return NULL;
  }
  vd_diags_free(&diags);
  size_t slot;
  if (r->count < MAX_CACHED) {
    slot = r->count++;
  } else { /* full: replace the oldest */
    slot = r->next;
    r->next = (r->next + 1) % MAX_CACHED;
    vd_deployment_release(r->cached[slot]);
  }
  r->cached[slot] = d;
  return d;
}

static const vd_gazetteer *stored_gazetteer(vd_replayer *r, const char *version, vd_error *err) {
  if (r->gazetteer && strcmp(r->gazetteer_version, version) == 0) return r->gazetteer;
  vd_gazetteer *g = vd_triage_gazetteer_stored(r->data_dir, version, err);
  if (!g) {
    vd_error_prefix(err, "gazetteer version %s cannot be rebuilt", version);
    return NULL;
  }
  vd_gazetteer_free(r->gazetteer);
  r->gazetteer = g;
  snprintf(r->gazetteer_version, sizeof r->gazetteer_version, "%s", version);
  return g;
}

json_t *vd_replayer_decide(vd_replayer *r, const json_t *trace, vd_error *err) {
  const char *version =
      json_string_value(json_object_get(json_object_get(trace, "deployment"), "version"));
  if (!version) {
    vd_error_set(err, "the trace names no deployment version (written before replay existed?)");
    return NULL;
  }
  const vd_deployment *d = stored_version(r, version, err);
  return d ? vd_replayer_decide_on(r, d, trace, err) : NULL;
}

/* ---- shared verb plumbing ------------------------------------------------------------------ */

static void print_value(FILE *f, const json_t *v) {
  char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) : NULL;
  fputs(text ? text : "(absent)", f);
  free(text);
}

/* ---- verdict replay ------------------------------------------------------------------------ */

/* For a triage decision replayed on its own: what was compared, and what was not and why. */
static void print_triage_notes(FILE *out, const json_t *trace) {
  fprintf(out,
          "  compared: the rules and the values they read, the model (intent, confidence, top "
          "3, contributions), route, priority, handled_by, the escalation task\n");
  const json_t *esc = json_object_get(trace, "escalation");
  if (json_is_object(esc)) {
    fprintf(out, "  not compared (per run): the %s job's id ",
            json_string_value(json_object_get(esc, "task")));
    print_value(out, json_object_get(esc, "job_id"));
    if (json_object_get(esc, "error")) {
      fputs(" and its submission error ", out);
      print_value(out, json_object_get(esc, "error"));
    }
    fputc('\n', out);
  }
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(trace, "amendments"), i, a) {
    fprintf(out, "  amendment of %s (the LLM's answer, stored later; shown, not compared): %s %s",
            json_string_value(json_object_get(a, "amended_at")),
            json_string_value(json_object_get(a, "task")),
            json_string_value(json_object_get(a, "state")));
    if (json_object_get(a, "final_intent"))
      fprintf(out, ", intent %s, route %s", json_string_value(json_object_get(a, "final_intent")),
              json_string_value(json_object_get(a, "final_route")));
    fputc('\n', out);
  }
  fprintf(out, "  carried over as stored: cards_masked = %lld (the raw text is never stored)\n",
          (long long)json_integer_value(json_object_get(
              json_array_get(json_object_get(trace, "candidates"), 0), "cards_masked")));
}

typedef struct replay_counts {
  size_t identical, different, failed;
  size_t rounded;  /* identical with reals that differ within VD_TRACE_REAL_TOLERANCE */
  size_t reworded; /* identical with reason texts worded differently (codes equal) */
  size_t triage, triage_identical, escalations;
} replay_counts;

/* "ID: identical", with what passed by leeway: "(42 reals within 1e-06 of the stored value:
 * float rounding; 3 reason texts worded differently)". */
static void print_leeway(FILE *out, const char *id, const vd_trace_leeway *l) {
  fprintf(out, "%s: identical", id);
  if (l->rounded || l->reworded) fputs(" (", out);
  if (l->rounded)
    fprintf(out, "%zu real%s within %g of the stored value: float rounding", l->rounded,
            l->rounded == 1 ? "" : "s", VD_TRACE_REAL_TOLERANCE);
  if (l->rounded && l->reworded) fputs("; ", out);
  if (l->reworded)
    fprintf(out, "%zu reason text%s worded differently, same code%s", l->reworded,
            l->reworded == 1 ? "" : "s", l->reworded == 1 ? "" : "s");
  fputs(l->rounded || l->reworded ? ")\n" : "\n", out);
}

/* Replays one trace; prints "identical" or the differences (and, with notes, what a triage
 * replay does not compare). */
static void replay_one(vd_replayer *r, const json_t *trace, bool quiet, bool notes,
                       replay_counts *counts, FILE *out) {
  vd_error e = {0};
  json_t *again = vd_replayer_decide(r, trace, &e);
  const char *id = json_string_value(json_object_get(trace, "id"));
  const char *kind = json_string_value(json_object_get(trace, "kind"));
  bool triage = kind && strcmp(kind, "triage") == 0;
  counts->triage += triage;
  counts->escalations += triage && json_is_object(json_object_get(trace, "escalation"));
  if (!again) {
    fprintf(out, "%s: cannot replay: %s\n", id ? id : "?", e.message);
    counts->failed++;
    return;
  }
  size_t total = 0;
  json_t *before = vd_trace_decision_view(trace), *after = vd_trace_decision_view(again);
  vd_trace_leeway leeway = {.real_tolerance = VD_TRACE_REAL_TOLERANCE, .reason_wording = true};
  json_t *diff = vd_trace_diff_within(before, after, &leeway, SHOWN_DIFFERENCES, &total);
  json_decref(before);
  json_decref(after);
  json_decref(again);
  if (total == 0) {
    counts->identical++;
    counts->triage_identical += triage;
    counts->rounded += leeway.rounded > 0;
    counts->reworded += leeway.reworded > 0;
    if (!quiet) print_leeway(out, id, &leeway);
  } else {
    counts->different++;
    fprintf(out, "%s: %zu difference%s\n", id, total, total == 1 ? "" : "s");
    size_t i;
    json_t *d;
    json_array_foreach(diff, i, d) {
      fprintf(out, "  %s: ", json_string_value(json_object_get(d, "path")));
      print_value(out, json_object_get(d, "before"));
      fputs(" -> ", out);
      print_value(out, json_object_get(d, "after"));
      fputc('\n', out);
    }
    if (total > json_array_size(diff))
      fprintf(out, "  ... and %zu more\n", total - json_array_size(diff));
  }
  json_decref(diff);
  if (triage && notes) print_triage_notes(out, trace);
}

typedef struct replay_range {
  vd_replayer *replayer;
  bool quiet;
  replay_counts counts;
  FILE *out;
} replay_range;

static bool replay_visit(void *ctx, const json_t *trace) {
  replay_range *rr = ctx;
  replay_one(rr->replayer, trace, rr->quiet, false, &rr->counts, rr->out);
  return true;
}

/* A stored decision that cannot be read is one that could not be replayed: said, counted, and
 * the run goes on with the others. */
static bool replay_damaged(void *ctx, const char *id, const vd_error *why) {
  replay_range *rr = ctx;
  fprintf(rr->out, "%s: cannot replay: %s\n", id, why->message);
  rr->counts.failed++;
  return true;
}

int vd_verb_replay(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"data-dir", true, NULL, "the data folder (decision log and version store)"},
      {"config", true, NULL, "the server's config file (its data_dir and decision_log)"},
      {"since", true, NULL, "replay every decision from this RFC 3339 time on"},
      {"until", true, NULL, "... up to (not including) this time"},
      {"kind", true, NULL, "only decisions of this kind (promotions or triage; default both)"},
      {"quiet", false, NULL, "with --since: print only the differences and the counts"},
  };
  size_t n = sizeof options / sizeof options[0];
  const char *pos[1];
  size_t npos = 0;
  static const vd_verb_help help = {
      "replay",
      "usage: verdict replay ID [--data-dir DIR | --config FILE]\n"
      "       verdict replay --since T [--until T] [--kind K] [--quiet] [--data-dir DIR]\n\n"
      "Re-runs stored decisions on the exact versions that made them (deployment settings,\n"
      "rule set, schema, model and, for triage, the gazetteer, kept content-addressed in\n"
      "the data folder) with the same request, decision id and time, and compares the new\n"
      "trace with the stored one (timings aside). Prints `identical`, or every difference\n"
      "as PATH: BEFORE -> AFTER.\n\n"
      "Triage decisions: the hot path (rules, model, route, priority, handled_by, the\n"
      "escalation task) is re-run on the stored masked text; no LLM job is submitted. The\n"
      "escalation's job id and the LLM's later answer (an amendment) cannot be re-created\n"
      "and are shown, not compared; cards_masked is carried over as stored.",
      "exit status: 0 all identical, 1 some differ or cannot be replayed, 2 usage"};
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, pos, 1, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  const char *since = vd_args_get(options, n, "since");
  const char *until = vd_args_get(options, n, "until");
  const char *data_dir = vd_args_get(options, n, "data-dir");
  const char *config = vd_args_get(options, n, "config");
  const char *kind = vd_args_get(options, n, "kind");
  if (!data_dir && !config)
    return vd_args_usage_error("replay", err, "give --data-dir DIR or --config FILE");
  if ((npos == 1) == (since != NULL))
    return vd_args_usage_error("replay", err, "give either a decision ID or --since T");
  char id[VD_DECISION_ID_SIZE];
  if (npos == 1 && !vd_decision_id_parse(pos[0], strlen(pos[0]), id, &e))
    return vd_args_usage_error("replay", err, "%s", e.message);
  if (until && !since) return vd_args_usage_error("replay", err, "--until needs --since");
  if (kind && !vd_deployment_kind_known(kind))
    return vd_args_usage_error("replay", err, "--kind must be promotions or triage");
  int64_t since_us = 0, until_us = 0;
  if (since && (!vd_replay_parse_time("--since", since, &since_us, &e) ||
                (until && !vd_replay_parse_time("--until", until, &until_us, &e))))
    return vd_args_usage_error("replay", err, "%s", e.message);
  char dir[4096];
  vd_decision_log *log = vd_replay_open_log(data_dir, config, dir, sizeof dir, &e);
  if (!log) {
    fprintf(err, "verdict replay: %s\n", e.message);
    return 1;
  }
  vd_replayer *r = vd_replayer_new(dir);
  int code = 1;
  if (npos == 1) {
    json_t *trace = NULL;
    vd_log_status st = vd_decision_log_get(log, id, &trace, &e);
    if (st == VD_LOG_OK) {
      replay_counts counts = {0};
      replay_one(r, trace, false, true, &counts, out);
      code = counts.identical == 1 ? 0 : 1;
    } else if (st == VD_LOG_NOT_FOUND) {
      fprintf(err, "verdict replay: no decision with id %s%s\n", id, not_indexed_hint);
    } else {
      fprintf(err, "verdict replay: %s\n", e.message);
    }
    json_decref(trace);
  } else {
    replay_range rr = {
        .replayer = r, .quiet = vd_args_get(options, n, "quiet") != NULL, .out = out};
    vd_decision_query q = {.kind = kind,
                           .has_since = true,
                           .since_us = since_us,
                           .has_until = until != NULL,
                           .until_us = until_us,
                           .limit = PAGE};
    bool ok = vd_decision_log_foreach(log, &q, replay_visit, replay_damaged, &rr, &e);
    if (!ok) fprintf(err, "verdict replay: reading the decision log: %s\n", e.message);
    const replay_counts *c = &rr.counts;
    fprintf(out,
            "replayed %zu decision%s: %zu identical, %zu different, %zu could not be replayed\n",
            c->identical + c->different + c->failed,
            c->identical + c->different + c->failed == 1 ? "" : "s", c->identical, c->different,
            c->failed);
    if (c->rounded)
      fprintf(out,
              "  %zu of the identical ones with reals within %g of the stored values (float "
              "rounding of another verdict build)\n",
              c->rounded, VD_TRACE_REAL_TOLERANCE);
    if (c->reworded)
      fprintf(out,
              "  %zu of the identical ones with reason texts worded differently (same reason "
              "codes; the wording changed between verdict builds)\n",
              c->reworded);
    if (c->triage)
      fprintf(out,
              "  of them triage: %zu, %zu identical (hot path compared; not compared: the job "
              "ids of %zu escalation%s and the LLM's answers stored as amendments; cards_masked "
              "carried over as stored)\n",
              c->triage, c->triage_identical, c->escalations, c->escalations == 1 ? "" : "s");
    code = ok && c->different == 0 && c->failed == 0 ? 0 : 1;
  }
  vd_replayer_free(r);
  vd_decision_log_close(log);
  return code;
}

/* ---- verdict explain ----------------------------------------------------------------------- */

static int missing_reasons(const char *dir, FILE *out, FILE *err) {
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(dir, &(vd_deployment_load_options){0}, &diags);
  if (!d) {
    for (size_t i = 0; i < diags.count; i++) {
      char line[VD_ERROR_MESSAGE_MAX];
      vd_error_format(&diags.items[i], line, sizeof line);
      fprintf(err, "%s\n", line);
    }
    vd_diags_free(&diags);
    return 2;
  }
  vd_diags_free(&diags);
  const vd_model *model = vd_deployment_model(d);
  int code = 0;
  if (!model) {
    fprintf(out, "%s: no model (%s): reasons come from rules only\n", dir,
            vd_deployment_model_error(d));
  } else {
    json_t *missing = vd_reasons_missing(model);
    if (json_array_size(missing) == 0) {
      fprintf(out, "%s: every model feature has a reason text for both directions\n", dir);
    } else {
      fprintf(out,
              "%s: %zu reason text%s missing from the model manifest (add them under \"reasons\"; "
              "until then this generated text is used):\n",
              dir, json_array_size(missing), json_array_size(missing) == 1 ? " is" : "s are");
      size_t i;
      json_t *m;
      json_array_foreach(missing, i, m)
          fprintf(out, "  %s %s: \"%s\"\n", json_string_value(json_object_get(m, "feature")),
                  json_string_value(json_object_get(m, "direction")),
                  json_string_value(json_object_get(m, "generated")));
      code = 1;
    }
    json_decref(missing);
  }
  vd_deployment_release(d);
  return code;
}

/* The stored ruleset a trace names (for rule descriptions), or NULL. */
static vd_ruleset *stored_ruleset(const char *data_dir, const json_t *trace) {
  const char *version =
      json_string_value(json_object_get(json_object_get(trace, "ruleset"), "version"));
  char path[4096];
  vd_error e;
  if (!version || !vd_store_path(data_dir, "rulesets", version, path, sizeof path, &e)) return NULL;
  strncat(path, "/ruleset.json", sizeof path - strlen(path) - 1);
  return vd_ruleset_load(path, NULL);
}

int vd_verb_explain(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"format", true, NULL, "text (default), html or json"},
      {"data-dir", true, NULL, "the data folder (decision log and version store)"},
      {"config", true, NULL, "the server's config file (its data_dir and decision_log)"},
      {"missing-reasons", true, NULL, "DEPLOYMENT: list the model features without a reason text"},
  };
  size_t n = sizeof options / sizeof options[0];
  const char *pos[1];
  size_t npos = 0;
  static const vd_verb_help help = {
      "explain",
      "usage: verdict explain ID [--format text|html|json] [--data-dir DIR | --config FILE]\n"
      "       verdict explain --missing-reasons DEPLOYMENT_DIR\n\n"
      "Prints a stored decision for a compliance reader: the outcome of every candidate,\n"
      "the principal reasons, the model's estimate and contributions (a bar chart; inline\n"
      "SVG in HTML), every rule checked with the values it read, and the exact versions.\n"
      "--missing-reasons lists the model features whose reason text is generated because\n"
      "the manifest has none (exit 1 when any is missing).",
      NULL};
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, pos, 1, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  const char *dir = vd_args_get(options, n, "missing-reasons");
  if (dir) {
    if (npos) return vd_args_usage_error("explain", err, "--missing-reasons takes no decision ID");
    return missing_reasons(dir, out, err);
  }
  vd_explain_format format = VD_EXPLAIN_TEXT;
  const char *format_name = vd_args_get(options, n, "format");
  if (format_name && !vd_explain_format_parse(format_name, &format))
    return vd_args_usage_error("explain", err, "--format must be text, html or json");
  const char *data_dir = vd_args_get(options, n, "data-dir");
  const char *config = vd_args_get(options, n, "config");
  if (npos != 1) return vd_args_usage_error("explain", err, "give the decision ID");
  char id[VD_DECISION_ID_SIZE];
  if (!vd_decision_id_parse(pos[0], strlen(pos[0]), id, &e))
    return vd_args_usage_error("explain", err, "%s", e.message);
  if (!data_dir && !config)
    return vd_args_usage_error("explain", err, "give --data-dir DIR or --config FILE");
  char data[4096];
  vd_decision_log *log = vd_replay_open_log(data_dir, config, data, sizeof data, &e);
  if (!log) {
    fprintf(err, "verdict explain: %s\n", e.message);
    return 1;
  }
  json_t *trace = NULL;
  vd_log_status st = vd_decision_log_get(log, id, &trace, &e);
  vd_decision_log_close(log);
  if (st == VD_LOG_NOT_FOUND) {
    fprintf(err, "verdict explain: no decision with id %s%s\n", id, not_indexed_hint);
    return 1;
  }
  if (st != VD_LOG_OK) {
    fprintf(err, "verdict explain: %s\n", e.message);
    return 1;
  }
  vd_ruleset *rs = stored_ruleset(data, trace);
  vd_buf b = {0};
  bool ok = vd_explain_render(trace, rs, format, &b, &e);
  if (ok) fwrite(b.data, 1, b.len, out);
  if (!ok) fprintf(err, "verdict explain: %s\n", e.message);
  vd_buf_free(&b);
  vd_ruleset_free(rs);
  json_decref(trace);
  return ok ? 0 : 1;
}
