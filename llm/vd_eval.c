#define _GNU_SOURCE /* strptime, timegm */
#include "vd_eval.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_extract_rules.h"
#include "vd_json_schema.h"
#include "vd_llm_cli.h"
#include "vd_llm_tasks.h"
#include "vd_prompts.h"
#include "vd_store.h"

enum { GOLDEN_MAX_CASES = 100000, EVAL_DEADLINE_MS = 30 * 60 * 1000 };

/* ---- statistics ---- */

void vd_eval_wilson(size_t passed, size_t cases, double confidence, double *low, double *high) {
  if (cases == 0) {
    *low = 0;
    *high = 1;
    return;
  }
  double n = (double)cases, p = (double)passed / n;
  double z = gsl_cdf_ugaussian_Pinv(1 - (1 - confidence) / 2);
  double denom = 1 + z * z / n;
  double centre = (p + z * z / (2 * n)) / denom;
  double half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom;
  *low = fmax(0, centre - half);
  *high = fmin(1, centre + half);
}

double vd_eval_fisher_p(size_t a_pass, size_t a_n, size_t b_pass, size_t b_n) {
  /* Margins fixed: passes K = a_pass + b_pass among N = a_n + b_n, a_n drawn for table A. */
  unsigned n1 = (unsigned)(a_pass + b_pass), n2 = (unsigned)(a_n + b_n - a_pass - b_pass);
  unsigned t = (unsigned)a_n;
  double observed = gsl_ran_hypergeometric_pdf((unsigned)a_pass, n1, n2, t);
  unsigned lo = t > n2 ? t - n2 : 0, hi = t < n1 ? t : n1;
  double p = 0;
  for (unsigned k = lo; k <= hi; k++) {
    double pk = gsl_ran_hypergeometric_pdf(k, n1, n2, t);
    if (pk <= observed * (1 + 1e-7)) p += pk;
  }
  return fmin(1, p);
}

/* ---- golden files ---- */

static bool need(const json_t *row, const char *key, bool (*is)(const json_t *), const char *path,
                 int line, const char *what, vd_error *err) {
  if (is(json_object_get(row, key))) return true;
  return vd_error_at(err, path, line, 1, "%s: expected %s", key, what);
}

static bool is_string(const json_t *v) { return json_is_string(v); }
static bool is_object(const json_t *v) { return json_is_object(v); }

json_t *vd_eval_load_golden(vd_llm_task task, const char *path, vd_error *err) {
  vd_error why = {0};
  FILE *f = vd_fopen_regular(path, &why);
  if (!f) {
    vd_error_at(err, path, 0, 0, "cannot open the golden file: %s", why.message);
    return NULL;
  }
  json_t *cases = json_array();
  char *text = NULL;
  size_t cap = 0;
  ssize_t n;
  int line = 0;
  bool ok = true;
  while (ok && (n = getline(&text, &cap, f)) > 0) {
    line++;
    if (strspn(text, " \t\r\n") == (size_t)n) continue;
    json_error_t jerr;
    json_t *row = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(row)) {
      ok = vd_error_at(err, path, line, jerr.column, "%s", row ? "expected an object" : jerr.text);
    } else if (need(row, "id", is_string, path, line, "a string", err) &&
               need(row, "slice", is_string, path, line, "a string", err) &&
               need(row, "expected", is_object, path, line, "an object", err)) {
      json_t *input;
      if (task == VD_LLM_TASK_EXTRACT) {
        ok = need(row, "text", is_string, path, line, "a string", err) &&
             need(row, "reference_date", is_string, path, line, "a date", err);
        input = json_pack("{s:O,s:O}", "text", json_object_get(row, "text"), "reference_date",
                          json_object_get(row, "reference_date"));
      } else {
        ok = need(row, "input", is_object, path, line, "an object", err);
        input = json_deep_copy(json_object_get(row, "input"));
      }
      const json_t *expected = json_object_get(row, "expected");
      if (ok && task == VD_LLM_TASK_CLASSIFY &&
          (!json_is_string(json_object_get(expected, "intent")) ||
           !json_is_string(json_object_get(expected, "route"))))
        ok = vd_error_at(err, path, line, 1, "expected: needs the strings intent and route");
      if (ok && json_array_size(cases) >= GOLDEN_MAX_CASES)
        ok = vd_error_at(err, path, line, 1, "more than %d cases", GOLDEN_MAX_CASES);
      if (ok)
        json_array_append_new(
            cases, json_pack("{s:O,s:O,s:o,s:O,s:i}", "id", json_object_get(row, "id"), "slice",
                             json_object_get(row, "slice"), "input", input, "expected", expected,
                             "line", line));
      else
        json_decref(input);
    } else {
      ok = false;
    }
    json_decref(row);
  }
  free(text);
  fclose(f);
  if (ok && json_array_size(cases) == 0) ok = vd_error_at(err, path, 0, 0, "no golden cases");
  if (!ok) {
    json_decref(cases);
    return NULL;
  }
  return cases;
}

/* ---- scoring ---- */

static void check(json_t *score, const char *field, bool pass, const json_t *expected,
                  const json_t *actual) {
  json_object_set_new(json_object_get(score, "fields"), field, json_boolean(pass));
  if (!pass) {
    json_object_set_new(json_object_get(score, "diff"), field,
                        json_pack("{s:O,s:O}", "expected", expected ? expected : json_null(),
                                  "actual", actual ? actual : json_null()));
    json_object_set_new(score, "pass", json_false());
  }
}

static bool next_date(const char *date, char *out) {
  struct tm tm = {0};
  if (!date || !strptime(date, "%Y-%m-%d", &tm)) return false;
  tm.tm_mday++;
  tm.tm_isdst = -1;
  time_t t = timegm(&tm);
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
  return true;
}

static void score_itinerary(json_t *score, const json_t *schema, const json_t *input,
                            const json_t *expected, const json_t *result) {
  vd_diags diags = {0};
  json_t *answer = result ? json_copy((json_t *)result) : NULL;
  json_object_del(answer, "source"); /* the job's marker of who answered, not part of the answer */
  bool valid = answer && vd_json_schema_validate(schema, answer, &diags);
  json_decref(answer);
  json_t *problems = json_array();
  for (size_t i = 0; i < diags.count && i < 5; i++)
    json_array_append_new(problems,
                          json_sprintf("%s: %s", diags.items[i].field, diags.items[i].message));
  vd_diags_free(&diags);
  json_t *want_valid = json_string("valid");
  check(score, "schema", valid, want_valid, valid ? NULL : problems);
  json_decref(want_valid);
  json_decref(problems);
  const char *start = json_string_value(json_object_get(input, "start_date"));
  const char *end = json_string_value(json_object_get(input, "end_date"));
  const json_t *days = json_object_get(result, "days");
  /* days: one entry per calendar day from start to end inclusive */
  size_t want = 0;
  char d[16];
  snprintf(d, sizeof d, "%s", start ? start : "");
  for (; want < 400; want++) {
    if (strcmp(d, end ? end : "") == 0) {
      want++;
      break;
    }
    if (!next_date(d, d)) break;
  }
  json_t *want_j = json_integer((json_int_t)want),
         *got_j = json_integer((json_int_t)json_array_size(days));
  check(score, "days", json_array_size(days) == want, want_j, got_j);
  json_decref(want_j);
  json_decref(got_j);
  bool dates = json_array_size(days) == want;
  snprintf(d, sizeof d, "%s", start ? start : "");
  size_t i;
  json_t *day;
  const json_t *bad = NULL;
  json_array_foreach(days, i, day) {
    const char *date = json_string_value(json_object_get(day, "date"));
    if (!date || strcmp(date, d) != 0 ||
        json_integer_value(json_object_get(day, "day")) != (json_int_t)i + 1) {
      dates = false;
      bad = day;
      break;
    }
    next_date(d, d);
  }
  json_t *want_date = json_string(d);
  check(score, "dates", dates, bad ? want_date : NULL, bad);
  json_decref(want_date);
  /* constraints: every requested interest served, the destination kept, activities per day */
  json_t *broken = json_array();
  size_t k;
  json_t *interest;
  json_array_foreach(json_object_get(input, "interests"), k, interest) {
    bool served = false;
    json_array_foreach(days, i, day) {
      size_t a;
      json_t *act;
      json_array_foreach(json_object_get(day, "activities"), a, act) {
        const char *ai = json_string_value(json_object_get(act, "interest"));
        if (ai && json_string_value(interest) && strcasecmp(ai, json_string_value(interest)) == 0)
          served = true;
      }
    }
    if (!served)
      json_array_append_new(broken, json_sprintf("interest %s is not served by any activity",
                                                 json_string_value(interest)));
  }
  const char *dest = json_string_value(json_object_get(input, "destination"));
  const char *got = json_string_value(json_object_get(result, "destination"));
  if (!got || !dest || strcasecmp(got, dest) != 0)
    json_array_append_new(broken, json_sprintf("destination is %s, expected %s", got ? got : "null",
                                               dest ? dest : "null"));
  const json_t *max = json_object_get(expected, "max_activities_per_day");
  if (json_is_integer(max)) json_array_foreach(days, i, day) {
      if ((json_int_t)json_array_size(json_object_get(day, "activities")) > json_integer_value(max))
        json_array_append_new(broken,
                              json_sprintf("day %zu has %zu activities, at most %lld", i + 1,
                                           json_array_size(json_object_get(day, "activities")),
                                           (long long)json_integer_value(max)));
    }
  json_t *none = json_array();
  check(score, "constraints", json_array_size(broken) == 0, none, broken);
  json_decref(none);
  json_decref(broken);
}

json_t *vd_eval_score(vd_llm_task task, const json_t *output_schema, const json_t *golden_case,
                      const json_t *result) {
  json_t *score = json_pack("{s:b,s:{},s:{}}", "pass", 1, "fields", "diff");
  const json_t *expected = json_object_get(golden_case, "expected");
  if (task == VD_LLM_TASK_EXTRACT) {
    for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) {
      const char *name = vd_extract_field_name((vd_extract_field)f);
      const json_t *want = json_object_get(expected, name), *got = json_object_get(result, name);
      check(score, name, result && vd_extract_field_equal((vd_extract_field)f, want, got), want,
            got);
    }
  } else if (task == VD_LLM_TASK_CLASSIFY) {
    static const char *const names[] = {"intent", "route"};
    for (size_t f = 0; f < 2; f++) {
      const json_t *want = json_object_get(expected, names[f]);
      const json_t *got = json_object_get(result, names[f]);
      check(score, names[f], got && json_equal(want, got), want, got);
    }
  } else {
    score_itinerary(score, output_schema, json_object_get(golden_case, "input"), expected, result);
  }
  return score;
}

/* ---- running ---- */

typedef struct eval_opts {
  vd_llm_task task;
  const char *config;
  const char *provider; /* NULL: the config's; "none": the fallback alone */
  int repeat;
  double margin;
} eval_opts;

/* One pass of every case through a fresh job service; returns the job records in case order. */
static json_t *run_cases(const eval_opts *o, const char *version, const json_t *cases, FILE *err) {
  vd_llm_config cfg;
  if (!vd_llm_config_load_file(&cfg, o->config, NULL, err)) return NULL;
  char dir[] = "/tmp/verdict-eval-XXXXXX";
  if (!mkdtemp(dir)) {
    fprintf(err, "verdict eval: cannot create a temporary data folder\n");
    return NULL;
  }
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
  snprintf(cfg.tasks[o->task].prompt_version, sizeof cfg.tasks[o->task].prompt_version, "%s",
           version);
  cfg.cache_ttl_s = 0;
  cfg.budget_count = 0;
  cfg.queue_capacity = json_array_size(cases) + 16;
  cfg.tasks[o->task].allow_fallback = true;
  /* All cases are queued at once, so a case may wait behind the others: the deadline covers the
   * whole run instead of one job (a production job is submitted alone). */
  if (cfg.tasks[o->task].deadline_ms < EVAL_DEADLINE_MS)
    cfg.tasks[o->task].deadline_ms = EVAL_DEADLINE_MS;
  for (int t = 0; t < VD_LLM_TASK_COUNT; t++) /* only the task under test needs its prompt */
    if (t != (int)o->task) cfg.tasks[t].enabled = false;
  if (o->provider && strcmp(o->provider, "none") == 0) {
    cfg.tasks[o->task].enabled = false;
  } else if (o->provider) {
    bool found = false;
    for (size_t p = 0; p < cfg.provider_count; p++)
      found |= strcmp(cfg.providers[p].name, o->provider) == 0;
    if (!found) {
      fprintf(err, "verdict eval: --provider %s is not a provider in the config\n", o->provider);
      vd_remove_tree(dir);
      return NULL;
    }
    for (int t = 0; t < VD_LLM_TIER_COUNT; t++)
      snprintf(cfg.tiers[t].provider, sizeof cfg.tiers[t].provider, "%s", o->provider);
  }
  vd_error e;
  vd_llm *llm = vd_llm_open(&cfg, &e);
  json_t *jobs = NULL;
  if (!llm) {
    char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
    vd_error_format(&e, line, sizeof line);
    fprintf(err, "verdict eval: %s\n", line);
  } else {
    jobs = json_array();
    char(*ids)[VD_LLM_JOB_ID_SIZE] = calloc(json_array_size(cases) + 1, sizeof *ids);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
      vd_llm_submit_opts so = {.feature = "eval",
                               .ref = json_string_value(json_object_get(c, "id"))};
      vd_llm_submit_status st =
          vd_llm_submit(llm, o->task, json_object_get(c, "input"), &so, ids[i], &e);
      if (st == VD_LLM_REJECTED || st == VD_LLM_QUEUE_FULL) {
        fprintf(err, "verdict eval: case %s (line %lld): %s%s%s\n",
                json_string_value(json_object_get(c, "id")),
                (long long)json_integer_value(json_object_get(c, "line")), e.field,
                e.field[0] ? ": " : "", st == VD_LLM_QUEUE_FULL ? "queue full" : e.message);
        ids[i][0] = '\0';
      }
    }
    json_array_foreach(cases, i, c) {
      json_t *job = NULL;
      if (ids[i][0]) {
        vd_llm_wait(llm, ids[i], cfg.tasks[o->task].deadline_ms + 10000);
        job = vd_llm_job(llm, ids[i]);
      }
      json_array_append_new(jobs, job ? job : json_pack("{s:s}", "state", "rejected"));
    }
    free(ids);
    vd_llm_close(llm);
  }
  vd_remove_tree(dir);
  return jobs;
}

/* ---- aggregation ---- */

static json_t *rate(size_t passed, size_t cases) {
  double lo, hi;
  vd_eval_wilson(passed, cases, 0.95, &lo, &hi);
  return json_pack("{s:I,s:I,s:f,s:f,s:f}", "cases", (json_int_t)cases, "passed",
                   (json_int_t)passed, "pass_rate", cases ? (double)passed / (double)cases : 0.0,
                   "ci_low", lo, "ci_high", hi);
}

static void count(json_t *tally, const char *key, bool pass) {
  json_t *t = json_object_get(tally, key);
  if (!t) json_object_set_new(tally, key, t = json_pack("{s:i,s:i}", "n", 0, "p", 0));
  json_object_set_new(t, "n", json_integer(json_integer_value(json_object_get(t, "n")) + 1));
  if (pass)
    json_object_set_new(t, "p", json_integer(json_integer_value(json_object_get(t, "p")) + 1));
}

static json_t *rates(const json_t *tally) {
  json_t *out = json_object();
  const char *k;
  json_t *t;
  json_object_foreach((json_t *)tally, k, t) {
    json_object_set_new(out, k,
                        rate((size_t)json_integer_value(json_object_get(t, "p")),
                             (size_t)json_integer_value(json_object_get(t, "n"))));
  }
  return out;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The report of one run: overall, slices, fields, failures, cost, latency, handled_by; and the
 * per-case scores (kept under "cases" until the report is written). */
static json_t *build_report(const eval_opts *o, const json_t *schema, const json_t *cases,
                            const json_t *jobs) {
  json_t *slices = json_object(), *fields = json_object(), *failures = json_array();
  json_t *handled = json_object(), *scores = json_array();
  size_t passed = 0, n = json_array_size(cases), calls_jobs = 0;
  double cost = 0;
  json_int_t tin = 0, tout = 0;
  double *lat = calloc(n + 1, sizeof *lat);
  size_t lat_n = 0;
  size_t i;
  json_t *c;
  json_array_foreach(cases, i, c) {
    const json_t *job = json_array_get(jobs, i);
    const json_t *result = json_object_get(job, "result");
    json_t *s = vd_eval_score(o->task, schema, c, json_is_object(result) ? result : NULL);
    bool pass = json_is_true(json_object_get(s, "pass"));
    passed += pass;
    count(slices, json_string_value(json_object_get(c, "slice")), pass);
    const char *f;
    json_t *fv;
    json_object_foreach(json_object_get(s, "fields"), f, fv) count(fields, f, json_is_true(fv));
    const char *by = json_string_value(json_object_get(job, "handled_by"));
    by = by ? by : json_string_value(json_object_get(job, "state"));
    json_object_set_new(
        handled, by ? by : "unknown",
        json_integer(json_integer_value(json_object_get(handled, by ? by : "unknown")) + 1));
    cost += json_number_value(json_object_get(job, "cost_usd"));
    tin += json_integer_value(json_object_get(job, "input_tokens"));
    tout += json_integer_value(json_object_get(job, "output_tokens"));
    calls_jobs += json_integer_value(json_object_get(job, "attempts")) > 0;
    if (json_is_integer(json_object_get(job, "latency_ms")))
      lat[lat_n++] = (double)json_integer_value(json_object_get(job, "latency_ms"));
    if (!pass) {
      const json_t *reason = json_object_get(job, "reason");
      json_array_append_new(
          failures,
          json_pack("{s:O,s:O,s:O,s:s,s:O}", "id", json_object_get(c, "id"), "slice",
                    json_object_get(c, "slice"), "diff", json_object_get(s, "diff"), "handled_by",
                    by ? by : "unknown", "reason", reason ? reason : json_null()));
    }
    json_array_append_new(scores, json_pack("{s:O,s:O,s:b,s:O}", "id", json_object_get(c, "id"),
                                            "slice", json_object_get(c, "slice"), "pass", pass,
                                            "result", result ? result : json_null()));
    json_decref(s);
  }
  qsort(lat, lat_n, sizeof *lat, compare_doubles);
  double mean = 0;
  for (size_t k = 0; k < lat_n; k++) mean += lat[k] / (double)lat_n;
  json_t *latency = json_pack("{s:I,s:f,s:f,s:f,s:f}", "jobs", (json_int_t)lat_n, "mean", mean,
                              "p50", lat_n ? lat[(lat_n - 1) / 2] : 0.0, "p95",
                              lat_n ? lat[(size_t)ceil(0.95 * (double)lat_n) - 1] : 0.0, "max",
                              lat_n ? lat[lat_n - 1] : 0.0);
  free(lat);
  json_t *report = json_pack("{s:o,s:o,s:o,s:o,s:{s:f,s:I,s:I,s:I},s:o,s:o,s:o}", "overall",
                             rate(passed, n), "slices", rates(slices), "fields", rates(fields),
                             "failures", failures, "cost", "usd", cost, "input_tokens", tin,
                             "output_tokens", tout, "jobs_with_llm_calls", (json_int_t)calls_jobs,
                             "latency_ms", latency, "handled_by", handled, "cases", scores);
  json_decref(slices);
  json_decref(fields);
  return report;
}

/* Share of cases whose result differs between the runs. */
static json_t *stability(const json_t *runs) {
  size_t n = json_array_size(json_array_get(runs, 0)), differing = 0;
  json_t *ids = json_array();
  for (size_t i = 0; i < n; i++) {
    const json_t *first = json_object_get(json_array_get(json_array_get(runs, 0), i), "result");
    for (size_t r = 1; r < json_array_size(runs); r++) {
      const json_t *other = json_object_get(json_array_get(json_array_get(runs, r), i), "result");
      if (!json_equal(first ? first : json_null(), other ? other : json_null())) {
        differing++;
        json_array_append_new(ids, json_integer((json_int_t)i));
        break;
      }
    }
  }
  return json_pack("{s:I,s:I,s:I,s:f,s:o}", "runs", (json_int_t)json_array_size(runs), "cases",
                   (json_int_t)n, "differing", (json_int_t)differing, "share",
                   n ? (double)differing / (double)n : 0.0, "differing_case_indexes", ids);
}

/* Per-slice change against the baseline, Fisher's exact test, and the gate. */
static bool compare(json_t *report, const json_t *base, const char *base_id, double margin) {
  json_t *slices = json_object(), *reasons = json_array(), *newly = json_array();
  const char *name;
  json_t *now;
  json_t *all = json_deep_copy(json_object_get(report, "slices"));
  json_object_set(all, "(overall)", json_object_get(report, "overall"));
  json_t *base_all = json_deep_copy(json_object_get(base, "slices"));
  json_object_set(base_all, "(overall)", json_object_get(base, "overall"));
  json_object_foreach(all, name, now) {
    const json_t *was = json_object_get(base_all, name);
    if (!was) continue;
    size_t np = (size_t)json_integer_value(json_object_get(now, "passed"));
    size_t nn = (size_t)json_integer_value(json_object_get(now, "cases"));
    size_t bp = (size_t)json_integer_value(json_object_get(was, "passed"));
    size_t bn = (size_t)json_integer_value(json_object_get(was, "cases"));
    double change = json_number_value(json_object_get(now, "pass_rate")) -
                    json_number_value(json_object_get(was, "pass_rate"));
    double p = vd_eval_fisher_p(np, nn, bp, bn);
    json_object_set_new(slices, name,
                        json_pack("{s:f,s:f,s:f,s:f,s:b}", "baseline_pass_rate",
                                  json_number_value(json_object_get(was, "pass_rate")), "pass_rate",
                                  json_number_value(json_object_get(now, "pass_rate")), "change",
                                  change, "fisher_p", p, "significant", p < 0.05));
    if (change < -margin - 1e-12)
      json_array_append_new(
          reasons, json_sprintf("slice %s: pass rate %.1f%% -> %.1f%% (%+.1f points, "
                                "margin %.1f)",
                                name, 100 * json_number_value(json_object_get(was, "pass_rate")),
                                100 * json_number_value(json_object_get(now, "pass_rate")),
                                100 * change, 100 * margin));
  }
  json_decref(all);
  json_decref(base_all);
  const json_t *cur = json_object_get(report, "cases"), *old = json_object_get(base, "cases");
  size_t i;
  json_t *c;
  json_array_foreach(cur, i, c) {
    const json_t *b = json_array_get(old, i);
    if (json_is_true(json_object_get(b, "pass")) && !json_is_true(json_object_get(c, "pass")))
      json_array_append(newly, json_object_get(c, "id"));
  }
  if (json_array_size(newly))
    json_array_append_new(reasons, json_sprintf("%zu case(s) that passed with the baseline now "
                                                "fail",
                                                json_array_size(newly)));
  bool pass = json_array_size(reasons) == 0;
  json_object_set_new(
      report, "baseline",
      json_pack("{s:s,s:O,s:o,s:o}", "prompt", base_id, "overall", json_object_get(base, "overall"),
                "slices", slices, "newly_failing", newly));
  json_object_set_new(report, "gate",
                      json_pack("{s:s,s:f,s:o}", "verdict", pass ? "PASS" : "BLOCKED", "margin",
                                margin, "reasons", reasons));
  return pass;
}

/* ---- writing ---- */

static void md_rate(FILE *f, const json_t *r) {
  fprintf(f, "%lld | %lld | %.1f%% | %.1f–%.1f%%",
          (long long)json_integer_value(json_object_get(r, "cases")),
          (long long)json_integer_value(json_object_get(r, "passed")),
          100 * json_number_value(json_object_get(r, "pass_rate")),
          100 * json_number_value(json_object_get(r, "ci_low")),
          100 * json_number_value(json_object_get(r, "ci_high")));
}

static void write_markdown(FILE *f, const json_t *report) {
  fprintf(f, "# Eval: task %s, prompt %s\n\n", json_string_value(json_object_get(report, "task")),
          json_string_value(json_object_get(report, "prompt")));
  fprintf(f, "Golden set `%s`, provider %s.\n\n",
          json_string_value(json_object_get(report, "golden")),
          json_string_value(json_object_get(report, "provider")));
  const json_t *cmp = json_object_get(json_object_get(report, "baseline"), "slices");
  fprintf(f, "| slice | cases | passed | pass rate | 95%% CI (Wilson) |%s\n",
          cmp ? " baseline | change | Fisher p |" : "");
  fprintf(f, "|---|---:|---:|---:|---:|%s\n", cmp ? "---:|---:|---:|" : "");
  json_t *rows = json_deep_copy(json_object_get(report, "slices"));
  json_object_set(rows, "(overall)", json_object_get(report, "overall"));
  const char *name;
  json_t *r;
  json_object_foreach(rows, name, r) {
    fprintf(f, "| %s | ", name);
    md_rate(f, r);
    const json_t *c = json_object_get(cmp, name);
    if (c)
      fprintf(f, " | %.1f%% | %+.1f | %.3f%s",
              100 * json_number_value(json_object_get(c, "baseline_pass_rate")),
              100 * json_number_value(json_object_get(c, "change")),
              json_number_value(json_object_get(c, "fisher_p")),
              json_is_true(json_object_get(c, "significant")) ? " *" : "");
    else if (cmp)
      fprintf(f, " | | |");
    fprintf(f, " |\n");
  }
  json_decref(rows);
  fprintf(
      f,
      "\n| field | cases | passed | pass rate | 95%% CI (Wilson) |\n|---|---:|---:|---:|---:|\n");
  json_object_foreach(json_object_get(report, "fields"), name, r) {
    fprintf(f, "| %s | ", name);
    md_rate(f, r);
    fprintf(f, " |\n");
  }
  const json_t *cost = json_object_get(report, "cost"),
               *lat = json_object_get(report, "latency_ms");
  fprintf(f,
          "\nCost $%.6f (%lld input, %lld output tokens); latency ms mean %.1f, p50 %.0f, p95 "
          "%.0f, max %.0f.\n",
          json_number_value(json_object_get(cost, "usd")),
          (long long)json_integer_value(json_object_get(cost, "input_tokens")),
          (long long)json_integer_value(json_object_get(cost, "output_tokens")),
          json_number_value(json_object_get(lat, "mean")),
          json_number_value(json_object_get(lat, "p50")),
          json_number_value(json_object_get(lat, "p95")),
          json_number_value(json_object_get(lat, "max")));
  const json_t *st = json_object_get(report, "stability");
  if (st)
    fprintf(f, "\nStability over %lld runs: %lld of %lld cases (%.1f%%) differ between runs.\n",
            (long long)json_integer_value(json_object_get(st, "runs")),
            (long long)json_integer_value(json_object_get(st, "differing")),
            (long long)json_integer_value(json_object_get(st, "cases")),
            100 * json_number_value(json_object_get(st, "share")));
  const json_t *gate = json_object_get(report, "gate");
  if (gate) {
    fprintf(f, "\n**Gate: %s** against baseline %s (margin %.1f points).\n",
            json_string_value(json_object_get(gate, "verdict")),
            json_string_value(json_object_get(json_object_get(report, "baseline"), "prompt")),
            100 * json_number_value(json_object_get(gate, "margin")));
    size_t i;
    json_t *reason;
    json_array_foreach(json_object_get(gate, "reasons"), i, reason)
        fprintf(f, "- %s\n", json_string_value(reason));
  }
  const json_t *failures = json_object_get(report, "failures");
  fprintf(f, "\n## Failures (%zu)\n\n", json_array_size(failures));
  size_t i;
  json_t *fl;
  json_array_foreach(failures, i, fl) {
    fprintf(f, "- **%s** (%s, %s):", json_string_value(json_object_get(fl, "id")),
            json_string_value(json_object_get(fl, "slice")),
            json_string_value(json_object_get(fl, "handled_by")));
    const char *field;
    json_t *d;
    json_object_foreach(json_object_get(fl, "diff"), field, d) {
      char *want = json_dumps(json_object_get(d, "expected"), JSON_COMPACT | JSON_ENCODE_ANY);
      char *got = json_dumps(json_object_get(d, "actual"), JSON_COMPACT | JSON_ENCODE_ANY);
      fprintf(f, " `%s` expected `%s`, got `%s`;", field, want ? want : "?", got ? got : "?");
      free(want);
      free(got);
    }
    fprintf(f, "\n");
  }
}

/* report.json and report.md in dir; a FIFO or device in their place is refused at once
 * (vd_fopen_write_regular), never waited on. */
static bool write_reports(const char *dir, json_t *report, FILE *err) {
  mkdir(dir, 0755);
  vd_buf path = {0};
  vd_buf_printf(&path, "%s/report.json", dir);
  vd_error e = {0};
  FILE *f = vd_fopen_write_regular(path.data, &e);
  bool ok = f && json_dumpf(report, f, JSON_INDENT(2)) == 0;
  ok = (!f || fclose(f) == 0) && ok;
  if (!f)
    fprintf(err, "verdict eval: %s\n", e.message);
  else if (!ok)
    fprintf(err, "verdict eval: cannot write %s\n", path.data);
  vd_buf_reset(&path);
  vd_buf_printf(&path, "%s/report.md", dir);
  f = ok ? vd_fopen_write_regular(path.data, &e) : NULL;
  if (f) {
    write_markdown(f, report);
    ok = fclose(f) == 0;
  } else if (ok) {
    fprintf(err, "verdict eval: %s\n", e.message);
    ok = false;
  }
  vd_buf_free(&path);
  return ok;
}

/* ---- the verb ---- */

static const vd_verb_help help = {
    "eval",
    "usage: verdict eval --task extract|classify|itinerary --golden FILE.jsonl --prompt VERSION\n"
    "                    [--baseline VERSION] [--provider NAME|none] [--repeat N] [--out DIR]\n"
    "                    [--margin POINTS] [--config FILE]\n\n"
    "Runs every golden case through the task (production validation, repair and fallback),\n"
    "scores it deterministically and writes DIR/report.json and DIR/report.md (DIR defaults\n"
    "to the current folder). --provider none runs the rules fallback alone. --repeat N runs\n"
    "N times and reports the share of cases whose result differs. With --baseline the\n"
    "gate blocks (exit 1) when any slice's pass rate drops by more than --margin points\n"
    "(default 5) or any case that passed with the baseline fails. Exit 2: bad usage/input.\n",
    NULL};

int vd_verb_eval(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"task", true, NULL, NULL},     {"golden", true, NULL, NULL},   {"prompt", true, NULL, NULL},
      {"baseline", true, NULL, NULL}, {"provider", true, NULL, NULL}, {"repeat", true, NULL, NULL},
      {"out", true, NULL, NULL},      {"margin", true, NULL, NULL},   {"config", true, NULL, NULL},
  };
  size_t n = sizeof options / sizeof *options, positional_count = 0;
  const char *positionals[1];
  int parsed =
      vd_args_verb(&help, argc, argv, 1, options, n, positionals, 0, &positional_count, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  eval_opts o = {.config = vd_args_get(options, n, "config"),
                 .provider = vd_args_get(options, n, "provider"),
                 .repeat = 1,
                 .margin = 0.05};
  const char *task = vd_args_get(options, n, "task"), *golden = vd_args_get(options, n, "golden");
  const char *prompt = vd_args_get(options, n, "prompt");
  const char *baseline = vd_args_get(options, n, "baseline");
  const char *outdir = vd_args_get(options, n, "out") ? vd_args_get(options, n, "out") : ".";
  if (!task || !vd_llm_task_parse(task, &o.task)) {
    fprintf(err, "verdict eval: --task must be extract, classify or itinerary\n");
    return 2;
  }
  if (!golden || !prompt) {
    fprintf(err, "verdict eval: --golden FILE and --prompt VERSION are required\n");
    return 2;
  }
  const char *rep = vd_args_get(options, n, "repeat");
  char *end = NULL;
  if (rep && ((o.repeat = (int)strtol(rep, &end, 10)) < 1 || o.repeat > 100 || *end)) {
    fprintf(err, "verdict eval: --repeat must be an integer in [1, 100]\n");
    return 2;
  }
  const char *margin = vd_args_get(options, n, "margin");
  if (margin && ((o.margin = strtod(margin, &end) / 100) < 0 || o.margin > 1 || *end)) {
    fprintf(err, "verdict eval: --margin must be a number of percentage points in [0, 100]\n");
    return 2;
  }
  json_t *cases = vd_eval_load_golden(o.task, golden, &e);
  if (!cases) {
    char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
    vd_error_format(&e, line, sizeof line);
    fprintf(err, "verdict eval: %s\n", line);
    return 2;
  }
  /* The prompts and the output schema come from the same config the runs use. */
  vd_llm_config cfg;
  if (!vd_llm_config_load_file(&cfg, o.config, NULL, err)) {
    json_decref(cases);
    return 2;
  }
  vd_prompt *p = vd_prompt_open(cfg.prompts_dir, o.task, prompt, &e);
  vd_prompt *b = p && baseline ? vd_prompt_open(cfg.prompts_dir, o.task, baseline, &e) : NULL;
  if (!p || (baseline && !b)) {
    char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
    vd_error_format(&e, line, sizeof line);
    fprintf(err, "verdict eval: %s\n", line);
    vd_prompt_free(p);
    json_decref(cases);
    return 2;
  }
  /* The schema the score checks is the one production validates against. */
  cfg.gazetteer_path[0] = '\0';
  cfg.catalogue_path[0] = '\0';
  for (int t = 0; t < VD_LLM_TASK_COUNT; t++) cfg.tasks[t].enabled = t == (int)o.task;
  snprintf(cfg.tasks[o.task].prompt_version, sizeof cfg.tasks[o.task].prompt_version, "%s",
           vd_prompt_id(p));
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "/nonexistent");
  vd_llm_tasks *tasks = vd_llm_tasks_load(&cfg, &e);
  json_t *schema = tasks ? json_deep_copy(vd_llm_tasks_output_schema(tasks, o.task)) : NULL;
  vd_llm_tasks_free(tasks);
  int status = 2;
  json_t *runs = json_array(), *report = NULL, *base_report = NULL;
  if (!schema) {
    fprintf(err, "verdict eval: %s\n", e.message);
    goto done;
  }
  for (int r = 0; r < o.repeat; r++) {
    json_t *jobs = run_cases(&o, vd_prompt_id(p), cases, err);
    if (!jobs) goto done;
    json_array_append_new(runs, jobs);
  }
  report = build_report(&o, schema, cases, json_array_get(runs, 0));
  json_object_set_new(report, "task", json_string(task));
  json_object_set_new(report, "prompt", json_string(vd_prompt_id(p)));
  json_object_set_new(report, "golden", json_string(golden));
  json_object_set_new(report, "provider", json_string(o.provider ? o.provider : "(config)"));
  if (o.repeat > 1) json_object_set_new(report, "stability", stability(runs));
  bool gate = true;
  if (b) {
    json_t *jobs = run_cases(&o, vd_prompt_id(b), cases, err);
    if (!jobs) goto done;
    base_report = build_report(&o, schema, cases, jobs);
    json_decref(jobs);
    gate = compare(report, base_report, vd_prompt_id(b), o.margin);
  }
  json_object_del(report, "cases");
  if (!write_reports(outdir, report, err)) goto done;
  const json_t *ov = json_object_get(report, "overall");
  fprintf(out, "%s %s: %lld/%lld passed (%.1f%%, 95%% CI %.1f–%.1f%%)\n", task, vd_prompt_id(p),
          (long long)json_integer_value(json_object_get(ov, "passed")),
          (long long)json_integer_value(json_object_get(ov, "cases")),
          100 * json_number_value(json_object_get(ov, "pass_rate")),
          100 * json_number_value(json_object_get(ov, "ci_low")),
          100 * json_number_value(json_object_get(ov, "ci_high")));
  if (b) {
    const json_t *g = json_object_get(report, "gate");
    fprintf(out, "gate against %s: %s\n", vd_prompt_id(b),
            json_string_value(json_object_get(g, "verdict")));
    size_t i;
    json_t *reason;
    json_array_foreach(json_object_get(g, "reasons"), i, reason)
        fprintf(out, "  %s\n", json_string_value(reason));
  }
  fprintf(out, "report: %s/report.json, %s/report.md\n", outdir, outdir);
  status = gate ? 0 : 1;
done:
  json_decref(report);
  json_decref(base_report);
  json_decref(runs);
  json_decref(schema);
  json_decref(cases);
  vd_prompt_free(p);
  vd_prompt_free(b);
  return status;
}
