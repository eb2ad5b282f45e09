/* The prompt registry (load errors with positions, ids, activation history, rollback) and the
 * eval pipeline end to end with the fake provider scripted per prompt version: a prompt better on
 * average but worse on one slice is BLOCKED, a uniformly better one passes, rollback restores the
 * old answers; statistics; `prompts stats` from a ledger. */
#define _GNU_SOURCE /* asprintf */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_llm_env.h"
#include "vd_cli_verbs.h"
#include "vd_eval.h"
#include "vd_extract_rules.h"
#include "vd_llm_store.h"
#include "vd_llm_tasks.h"
#include "vd_prompts.h"
#include "vd_test.h"

static const char classify_golden[] = VERDICT_SOURCE_DIR "/examples/evals/classify_golden.jsonl";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static char *slurp(FILE *f) {
  fflush(f);
  long n = ftell(f);
  rewind(f);
  char *s = calloc((size_t)n + 1, 1);
  ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return s;
}

typedef struct captured {
  int rc;
  char *out, *err;
} captured;

static captured call(int (*verb)(int, char **, FILE *, FILE *), int argc, char **argv) {
  FILE *out = tmpfile(), *err = tmpfile();
  captured c = {.rc = verb(argc, argv, out, err)};
  c.out = slurp(out);
  c.err = slurp(err);
  return c;
}

static void release(captured *c) {
  free(c->out);
  free(c->err);
}

static const char header[] =
    "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
    "output_schema: builtin\n---\n";

/* ---- registry ---- */

static void expect_error(const char *name, const char *text, int line, const char *words) {
  vd_error err = {0};
  vd_prompt *p = vd_prompt_load_string(text, strlen(text), name, &err);
  ck_assert_msg(p == NULL, "%s loaded", text);
  ck_assert_msg(err.line == line, "line %d, expected %d: %s", err.line, line, err.message);
  ck_assert_msg(strstr(err.message, words), "message: %s", err.message);
  ck_assert_str_eq(err.file, name);
}

START_TEST(test_load_errors_have_positions) {
  /* An unknown placeholder: line and column of its "{{". */
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\nClassify this.\n\nText: {{request}} {{texts}}\n",
               10, "unknown placeholder {{texts}}");
  /* A placeholder the task provides but the body never uses. */
  expect_error("p/extract/v2.md",
               "---\ntask: extract\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\n{{request}} {{known_fields}}\n",
               8, "never uses {{missing_fields}}");
  /* Header mistakes name the key's line. */
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 7\n"
               "output_schema: builtin\n---\n{{request}}\n",
               5, "temperature");
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: medium\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\n{{request}}\n",
               3, "tier");
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokns: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\n{{request}}\n",
               4, "unknown header key");
  expect_error("p/extract/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\n{{request}}\n",
               2, "the file is in extract/");
  expect_error("p/classify/v2.md", "---\ntask: classify\n{{request}}\n", 1, "not closed");
  expect_error("p/classify/v2.md", "{{request}}\n", 1, "starts with a `---` line");
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: {type: objekt}\n---\n{{request}}\n",
               6, "output_schema");
  expect_error("p/classify/v2.md",
               "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
               "output_schema: builtin\n---\nbad {{ request }}\n",
               8, "malformed placeholder");
}
END_TEST

START_TEST(test_ids_render_and_inline_schema) {
  char text[1024];
  snprintf(text, sizeof text, "%sClassify: {{request}}\n", header);
  vd_error err;
  vd_prompt *p = vd_prompt_load_string(text, strlen(text), "x/classify/v7.md", &err);
  ck_assert_msg(p != NULL, "%s", err.message);
  ck_assert_str_eq(vd_prompt_version(p), "v7");
  ck_assert_int_eq(strlen(vd_prompt_id(p)), strlen("v7@") + 12);
  ck_assert(strncmp(vd_prompt_id(p) + 3, vd_prompt_sha256(p), 12) == 0);
  ck_assert_int_eq(vd_prompt_max_tokens(p), 256);
  ck_assert_ptr_null(vd_prompt_output_schema(p));
  json_t *vars = json_pack("{s:s}", "request", "{\"text\":\"hi\"}");
  char *out = vd_prompt_render(p, vars, &err);
  ck_assert_str_eq(out, "Classify: {\"text\":\"hi\"}\n");
  free(out);
  json_decref(vars);
  /* One byte more is another id. */
  strcat(text, " ");
  vd_prompt *q = vd_prompt_load_string(text, strlen(text), "x/classify/v7.md", &err);
  ck_assert_str_ne(vd_prompt_id(p), vd_prompt_id(q));
  vd_prompt_free(q);
  vd_prompt_free(p);
  /* An inline output schema replaces the built-in one. */
  const char *inline_schema =
      "---\ntask: classify\ntier: large\nmax_tokens: 100\ntemperature: null\n"
      "output_schema:\n  type: object\n  required: [intent, route, confidence]\n---\n{{request}}\n";
  p = vd_prompt_load_string(inline_schema, strlen(inline_schema), "classify/v8.md", &err);
  ck_assert_msg(p != NULL, "%s", err.message);
  ck_assert(json_is_object(vd_prompt_output_schema(p)));
  ck_assert(vd_prompt_temperature(p) < 0);
  ck_assert_int_eq(vd_prompt_tier(p), VD_LLM_TIER_LARGE);
  vd_prompt_free(p);
}
END_TEST

/* ---- the scripted fake: answers depend on the prompt version the request carries ---- */

typedef struct script {
  json_t *cases; /* text -> {index, slice, intent, route} */
  json_t *asked; /* text -> times asked (for the "flaky" script) */
} script;

static void script_load(script *s) {
  vd_error err;
  json_t *golden = vd_eval_load_golden(VD_LLM_TASK_CLASSIFY, classify_golden, &err);
  ck_assert_msg(golden != NULL, "%s", err.message);
  s->cases = json_object();
  s->asked = json_object();
  size_t i;
  json_t *c;
  json_array_foreach(golden, i, c) {
    const json_t *exp = json_object_get(c, "expected");
    json_object_set_new(
        s->cases, json_string_value(json_object_get(json_object_get(c, "input"), "text")),
        json_pack("{s:i,s:O,s:O,s:O}", "index", (int)i, "slice", json_object_get(c, "slice"),
                  "intent", json_object_get(exp, "intent"), "route",
                  json_object_get(exp, "route")));
  }
  json_decref(golden);
}

/* base: wrong on every 4th case; skewed: right except on half the "routing" slice (more right
 * overall than base); better: always right. */
static char *respond(void *ctx, const json_t *body) {
  script *s = ctx;
  const char *content = json_string_value(
      json_object_get(json_array_get(json_object_get(body, "messages"), 0), "content"));
  const char *at = content ? strstr(content, "Request to classify: ") : NULL;
  if (!at) return NULL;
  json_error_t jerr;
  json_t *req = json_loads(at + strlen("Request to classify: "), JSON_DISABLE_EOF_CHECK, &jerr);
  const json_t *c = json_object_get(s->cases, json_string_value(json_object_get(req, "text")));
  json_decref(req);
  if (!c) return NULL;
  int index = (int)json_integer_value(json_object_get(c, "index"));
  bool routing = strcmp(json_string_value(json_object_get(c, "slice")), "routing") == 0;
  bool right = true;
  if (strstr(content, "script: base")) right = index % 4 != 0;
  if (strstr(content, "script: skewed")) right = !(routing && index % 2 == 0);
  if (strstr(content, "script: flaky")) { /* right the first time a case is asked, then wrong */
    char key[16];
    snprintf(key, sizeof key, "%d", index);
    json_int_t n = json_integer_value(json_object_get(s->asked, key));
    json_object_set_new(s->asked, key, json_integer(n + 1));
    right = n % 2 == 0;
  }
  const char *intent = json_string_value(json_object_get(c, "intent"));
  const char *route = json_string_value(json_object_get(c, "route"));
  if (!right) {
    bool oos = strcmp(intent, "oos") == 0;
    intent = oos ? "travel_suggestion" : "oos";
    route = oos ? "travel_planning" : "human_review";
  }
  char *answer = NULL;
  if (asprintf(&answer, "{\"intent\":\"%s\",\"route\":\"%s\",\"confidence\":0.9}", intent, route) <
      0)
    return NULL;
  return answer;
}

typedef struct eval_env {
  llm_env env;
  script script;
  char prompts[300], config[300], data[300], out[300];
  char ids[4][VD_PROMPT_ID_SIZE];
} eval_env;

static void eval_env_init(eval_env *e) {
  llm_env_init(&e->env, VD_LLM_WIRE_ANTHROPIC);
  script_load(&e->script);
  fake_provider_set_responder(e->env.fake, respond, &e->script);
  snprintf(e->prompts, sizeof e->prompts, "%s/prompts", e->env.dir);
  snprintf(e->data, sizeof e->data, "%s/data", e->env.dir);
  snprintf(e->out, sizeof e->out, "%s/out", e->env.dir);
  char dir[400];
  snprintf(dir, sizeof dir, "%s/classify", e->prompts);
  ck_assert_int_eq(mkdir(e->prompts, 0755), 0);
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  static const char *const names[] = {"base", "skewed", "better", "flaky"};
  for (int v = 0; v < 4; v++) {
    char path[500], text[1024];
    snprintf(path, sizeof path, "%s/v%d.md", dir, v + 1);
    snprintf(text, sizeof text, "%sscript: %s\nRequest to classify: {{request}}\n", header,
             names[v]);
    write_file(path, text);
    vd_error err;
    char version[16];
    snprintf(version, sizeof version, "v%d", v + 1);
    vd_prompt *p = vd_prompt_open(e->prompts, VD_LLM_TASK_CLASSIFY, version, &err);
    ck_assert_msg(p != NULL, "%s", err.message);
    snprintf(e->ids[v], sizeof e->ids[v], "%s", vd_prompt_id(p));
    vd_prompt_free(p);
  }
  snprintf(e->config, sizeof e->config, "%s/verdict.yaml", e->env.dir);
  char config[2048];
  snprintf(
      config, sizeof config,
      "llm:\n"
      "  data_dir: data\n"
      "  prompts_dir: prompts\n"
      "  catalogue: %s/examples/itineraries/catalogue.json\n"
      "  gazetteer: %s/examples/triage/gazetteer.tsv\n"
      "  providers:\n"
      "    fake: {wire: anthropic, base_url: \"%s\", api_key_env: %s}\n"
      "  tiers:\n"
      "    small: {provider: fake, model: s, usd_per_mtok_input: 1, usd_per_mtok_output: 5}\n"
      "    large: {provider: fake, model: l, usd_per_mtok_input: 3, usd_per_mtok_output: 15}\n",
      VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR, fake_provider_anthropic_url(e->env.fake),
      LLM_ENV_KEY_VAR);
  write_file(e->config, config);
}

static void eval_env_done(eval_env *e) {
  fake_provider_set_responder(e->env.fake, NULL, NULL);
  json_decref(e->script.cases);
  json_decref(e->script.asked);
  llm_env_done(&e->env);
}

static json_t *run_eval(eval_env *e, const char *prompt, const char *baseline, int *rc) {
  char *argv[] = {"eval",     "--task",       "classify",       "--golden", (char *)classify_golden,
                  "--prompt", (char *)prompt, "--config",       e->config,  "--out",
                  e->out,     "--baseline",   (char *)baseline, NULL};
  int argc = baseline ? 13 : 11;
  captured c = call(vd_verb_eval, argc, argv);
  *rc = c.rc;
  ck_assert_msg(c.rc == 0 || c.rc == 1, "rc %d: %s", c.rc, c.err);
  release(&c);
  char path[400];
  snprintf(path, sizeof path, "%s/report.json", e->out);
  json_t *report = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(report);
  snprintf(path, sizeof path, "%s/report.md", e->out);
  FILE *md = fopen(path, "r");
  ck_assert_ptr_nonnull(md);
  fclose(md);
  return report;
}

static double rate_of(const json_t *report, const char *slice) {
  const json_t *r = slice ? json_object_get(json_object_get(report, "slices"), slice)
                          : json_object_get(report, "overall");
  return json_number_value(json_object_get(r, "pass_rate"));
}

START_TEST(test_gate_blocks_a_slice_regression_and_passes_a_uniform_gain) {
  eval_env e;
  eval_env_init(&e);
  int rc;
  json_t *base = run_eval(&e, "v1", NULL, &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(base, "overall"), "passed")),
                   18);
  ck_assert_int_eq(json_array_size(json_object_get(base, "failures")), 6);
  const json_t *ov = json_object_get(base, "overall");
  ck_assert(json_number_value(json_object_get(ov, "ci_low")) < 0.75);
  ck_assert(json_number_value(json_object_get(ov, "ci_high")) > 0.75);
  ck_assert_ptr_nonnull(json_object_get(json_object_get(base, "fields"), "intent"));
  /* cost from the ledger of the run: the fake reports tokens, the tier has prices */
  ck_assert(json_number_value(json_object_get(json_object_get(base, "cost"), "usd")) > 0);
  json_decref(base);

  /* Better on average (20/24 > 18/24) but the routing slice drops 75% -> 50%: blocked. */
  json_t *skewed = run_eval(&e, "v2", "v1", &rc);
  ck_assert_int_eq(rc, 1);
  ck_assert(rate_of(skewed, NULL) > 0.75);
  ck_assert(rate_of(skewed, "routing") < 0.75);
  const json_t *gate = json_object_get(skewed, "gate");
  ck_assert_str_eq(json_string_value(json_object_get(gate, "verdict")), "BLOCKED");
  char *reasons = json_dumps(json_object_get(gate, "reasons"), 0);
  ck_assert_msg(strstr(reasons, "slice routing") && strstr(reasons, "now fail"), "%s", reasons);
  free(reasons);
  const json_t *newly = json_object_get(json_object_get(skewed, "baseline"), "newly_failing");
  ck_assert_int_eq(json_array_size(newly), 2);
  const json_t *routing =
      json_object_get(json_object_get(json_object_get(skewed, "baseline"), "slices"), "routing");
  ck_assert(json_number_value(json_object_get(routing, "change")) < -0.2);
  ck_assert(json_number_value(json_object_get(routing, "fisher_p")) > 0.05); /* 8 cases: noise */
  json_decref(skewed);

  /* Uniformly better: passes. */
  json_t *better = run_eval(&e, "v3", "v1", &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(better, "gate"), "verdict")),
                   "PASS");
  ck_assert(rate_of(better, NULL) == 1.0);
  json_decref(better);

  /* --repeat: a prompt whose answers change between runs is measured as unstable. */
  char *rep_argv[] = {"eval",     "--task",   "classify", "--golden", (char *)classify_golden,
                      "--prompt", "v4",       "--config", e.config,   "--out",
                      e.out,      "--repeat", "3",        NULL};
  captured r = call(vd_verb_eval, 13, rep_argv);
  ck_assert_msg(r.rc == 0, "%s", r.err);
  release(&r);
  char path[400];
  snprintf(path, sizeof path, "%s/report.json", e.out);
  json_t *flaky = json_load_file(path, 0, NULL);
  const json_t *st = json_object_get(flaky, "stability");
  ck_assert_int_eq(json_integer_value(json_object_get(st, "runs")), 3);
  ck_assert_int_eq(json_integer_value(json_object_get(st, "differing")), 24);
  ck_assert(json_number_value(json_object_get(st, "share")) == 1.0);
  json_decref(flaky);
  json_t *stable = run_eval(&e, "v3", NULL, &rc);
  ck_assert_ptr_null(json_object_get(stable, "stability"));
  json_decref(stable);

  /* --provider names a configured provider, or none for the fallback alone. */
  char *named[] = {"eval",     "--task",     "classify", "--golden", (char *)classify_golden,
                   "--prompt", "v3",         "--config", e.config,   "--out",
                   e.out,      "--provider", "fake",     NULL};
  captured pn = call(vd_verb_eval, 13, named);
  ck_assert_msg(pn.rc == 0 && strstr(pn.out, "24/24"), "%s%s", pn.out, pn.err);
  release(&pn);
  named[12] = "nosuch";
  pn = call(vd_verb_eval, 13, named);
  ck_assert_int_eq(pn.rc, 2);
  ck_assert(strstr(pn.err, "--provider nosuch"));
  release(&pn);
  named[12] = "none";
  int before = fake_provider_request_count(e.env.fake);
  pn = call(vd_verb_eval, 13, named);
  ck_assert_int_eq(pn.rc, 0);
  ck_assert_int_eq(fake_provider_request_count(e.env.fake), before); /* no call at all */
  ck_assert_msg(strstr(pn.out, "13/24"), "%s", pn.out);              /* the provisional decisions */
  release(&pn);

  /* A looser margin does not excuse the newly failing cases. */
  char *argv[] = {"eval",     "--task", "classify",   "--golden", (char *)classify_golden,
                  "--prompt", "v2",     "--baseline", "v1",       "--config",
                  e.config,   "--out",  e.out,        "--margin", "50",
                  NULL};
  captured c = call(vd_verb_eval, 15, argv);
  ck_assert_int_eq(c.rc, 1);
  release(&c);
  eval_env_done(&e);
}
END_TEST

static json_t *classify_once(eval_env *e, const char *text) {
  vd_llm_config cfg = e->env.cfg;
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", e->data);
  snprintf(cfg.prompts_dir, sizeof cfg.prompts_dir, "%s", e->prompts);
  cfg.cache_ttl_s = 0;
  cfg.tasks[VD_LLM_TASK_EXTRACT].enabled = cfg.tasks[VD_LLM_TASK_ITINERARY].enabled = false;
  vd_error err;
  vd_llm *llm = vd_llm_open(&cfg, &err);
  ck_assert_msg(llm != NULL, "%s", err.message);
  json_t *in = json_pack("{s:s}", "text", text);
  char *input = json_dumps(in, 0);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_CLASSIFY, input, NULL);
  free(input);
  json_decref(in);
  vd_llm_close(llm);
  return job;
}

START_TEST(test_activate_and_rollback_restore_the_old_behaviour) {
  eval_env e;
  eval_env_init(&e);
  /* case 18 of the golden set: base answers it right, skewed wrong */
  const char *text = "I want to cancel my flight and get a refund";
  vd_error err;
  ck_assert(
      !vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v1", NULL, "ana", "", &err));
  ck_assert(strstr(err.message, "why"));
  ck_assert(
      !vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v9", NULL, "ana", "x", &err));
  ck_assert(vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v1", NULL, "ana", "first",
                                &err));
  json_t *job = classify_once(&e, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[0]);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "intent")),
                   "cancel_reservation");
  json_decref(job);
  char *argv[] = {"prompts",        "activate", "classify", "v2",         "--why",
                  "shorter prompt", "--who",    "ben",      "--data-dir", e.data,
                  "--prompts-dir",  e.prompts,  NULL};
  captured c = call(vd_verb_prompts, 12, argv);
  ck_assert_msg(c.rc == 0, "%s", c.err);
  release(&c);
  job = classify_once(&e, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[1]);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "intent")),
                   "oos");
  json_decref(job);
  /* One command back to the previous version. */
  char *rb[] = {"prompts", "rollback", "classify",   "--why", "routing regression",
                "--who",   "ben",      "--data-dir", e.data,  "--prompts-dir",
                e.prompts, NULL};
  c = call(vd_verb_prompts, 11, rb);
  ck_assert_msg(c.rc == 0, "%s", c.err);
  ck_assert_msg(strstr(c.out, e.ids[0]), "%s", c.out);
  release(&c);
  job = classify_once(&e, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[0]);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "intent")),
                   "cancel_reservation");
  json_decref(job);
  /* The history says who, when and why, in order; nothing older to roll back to now. */
  json_t *history = vd_prompts_history(e.data, VD_LLM_TASK_CLASSIFY, &err);
  ck_assert_int_eq(json_array_size(history), 3);
  const json_t *last = json_array_get(history, 2);
  ck_assert_str_eq(json_string_value(json_object_get(last, "action")), "rollback");
  ck_assert_str_eq(json_string_value(json_object_get(last, "who")), "ben");
  ck_assert_str_eq(json_string_value(json_object_get(last, "why")), "routing regression");
  ck_assert_ptr_nonnull(json_object_get(last, "at"));
  json_decref(history);
  char restored[VD_PROMPT_ID_SIZE];
  ck_assert(!vd_prompts_rollback(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "ben", "again", restored,
                                 &err));
  /* An activated file that changed afterwards is refused, not silently served. */
  char path[500];
  snprintf(path, sizeof path, "%s/classify/v1.md", e.prompts);
  FILE *f = fopen(path, "a");
  fputs("edited\n", f);
  fclose(f);
  vd_llm_config cfg = e.env.cfg;
  cfg.tasks[VD_LLM_TASK_EXTRACT].enabled = cfg.tasks[VD_LLM_TASK_ITINERARY].enabled = false;
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", e.data);
  snprintf(cfg.prompts_dir, sizeof cfg.prompts_dir, "%s", e.prompts);
  vd_llm *llm = vd_llm_open(&cfg, &err);
  ck_assert_ptr_null(llm);
  ck_assert_msg(strstr(err.message, "changed since"), "%s", err.message);
  eval_env_done(&e);
}
END_TEST

static json_t *classify_on(vd_llm *llm, const char *text) {
  json_t *in = json_pack("{s:s}", "text", text);
  char *input = json_dumps(in, 0);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_CLASSIFY, input, NULL);
  free(input);
  json_decref(in);
  return job;
}

START_TEST(test_reload_swaps_prompts_atomically) {
  eval_env e;
  eval_env_init(&e);
  const char *text = "I want to cancel my flight and get a refund";
  vd_llm_config cfg = e.env.cfg;
  cfg.tasks[VD_LLM_TASK_EXTRACT].enabled = cfg.tasks[VD_LLM_TASK_ITINERARY].enabled = false;
  cfg.cache_ttl_s = 0;
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", e.data);
  snprintf(cfg.prompts_dir, sizeof cfg.prompts_dir, "%s", e.prompts);
  vd_error err;
  vd_llm *llm = vd_llm_open(&cfg, &err);
  ck_assert_msg(llm != NULL, "%s", err.message);
  json_t *job = classify_on(llm, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[0]);
  json_decref(job);
  /* Activated while serving: nothing changes until the reload. */
  ck_assert(
      vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v2", "v1", "ana", "try", &err));
  job = classify_on(llm, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[0]);
  json_decref(job);
  json_t *versions = NULL;
  ck_assert_msg(vd_llm_reload_prompts(llm, &versions, &err), "%s", err.message);
  ck_assert_str_eq(json_string_value(json_object_get(versions, "classify")), e.ids[1]);
  json_decref(versions);
  job = classify_on(llm, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[1]);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "intent")),
                   "oos");
  json_decref(job);
  /* A broken activated file is refused with its position; the served prompt stays. */
  char path[500];
  snprintf(path, sizeof path, "%s/classify/v4.md", e.prompts);
  write_file(path,
             "---\ntask: classify\ntier: small\nmax_tokens: 256\ntemperature: 0\n"
             "output_schema: builtin\n---\n{{request}} {{oops}}\n");
  ck_assert(
      !vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v4", "v1", "ana", "x", &err));
  ck_assert_int_eq(err.line, 8);
  /* The first activation can be rolled back: it remembered the config's version. */
  char restored[VD_PROMPT_ID_SIZE];
  ck_assert_msg(
      vd_prompts_rollback(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "ana", "undo", restored, &err),
      "%s", err.message);
  ck_assert_str_eq(restored, e.ids[0]);
  ck_assert(vd_prompts_activate(e.data, e.prompts, VD_LLM_TASK_CLASSIFY, "v2", "v1", "ana", "redo",
                                &err));
  job = classify_on(llm, text);
  ck_assert_str_eq(json_string_value(json_object_get(job, "prompt_version")), e.ids[1]);
  json_decref(job);
  vd_llm_close(llm);
  eval_env_done(&e);
}
END_TEST

START_TEST(test_list_show_diff) {
  eval_env e;
  eval_env_init(&e);
  char *argv[] = {"prompts", "list",       "classify", "--prompts-dir",
                  e.prompts, "--data-dir", e.data,     NULL};
  captured c = call(vd_verb_prompts, 7, argv);
  ck_assert_int_eq(c.rc, 0);
  ck_assert(strstr(c.out, e.ids[0]) && strstr(c.out, e.ids[1]) && strstr(c.out, e.ids[2]));
  release(&c);
  char *d[] = {"prompts", "diff", "classify", "v1", "v2", "--prompts-dir", e.prompts, NULL};
  c = call(vd_verb_prompts, 7, d);
  ck_assert_int_eq(c.rc, 0);
  ck_assert_msg(strstr(c.out, "- script: base\n+ script: skewed\n"), "%s", c.out);
  ck_assert(strstr(c.out, "  Request to classify: {{request}}"));
  release(&c);
  char *s[] = {"prompts", "show", "classify", "v3", "--prompts-dir", e.prompts, NULL};
  c = call(vd_verb_prompts, 6, s);
  ck_assert(strstr(c.out, "sha256: ") && strstr(c.out, "script: better"));
  release(&c);
  char *bad[] = {"prompts", "frobnicate", NULL};
  c = call(vd_verb_prompts, 2, bad);
  ck_assert_int_eq(c.rc, 2);
  release(&c);
  eval_env_done(&e);
}
END_TEST

START_TEST(test_stats_from_the_ledger) {
  eval_env e;
  eval_env_init(&e);
  ck_assert_int_eq(mkdir(e.data, 0755), 0);
  char path[400];
  snprintf(path, sizeof path, "%s/llm.sqlite", e.data);
  vd_error err;
  vd_llm_store *store = vd_llm_store_open(path, true, &err);
  ck_assert_ptr_nonnull(store);
  /* v1: two jobs (one repaired: two calls), v2: one job, plus a rules-only job with no call. */
  struct {
    const char *id, *pv;
    int calls;
    bool repaired;
    int latency;
  } jobs[] = {{"j1", e.ids[0], 1, false, 100},
              {"j2", e.ids[0], 2, true, 300},
              {"j3", e.ids[1], 1, false, 50},
              {"j4", e.ids[1], 0, false, 1}};
  for (size_t i = 0; i < 4; i++) {
    json_t *rec =
        json_pack("{s:s,s:s,s:s,s:I,s:s,s:b,s:i}", "job_id", jobs[i].id, "state", "succeeded",
                  "task", "classify", "created_us", (json_int_t)i, "prompt_version", jobs[i].pv,
                  "repaired", jobs[i].repaired, "latency_ms", jobs[i].latency);
    ck_assert(vd_llm_store_put_job(store, rec, &err));
    json_decref(rec);
    for (int k = 0; k < jobs[i].calls; k++) {
      vd_llm_ledger_row row = {.at_us = 1,
                               .day = "2026-12-03",
                               .job_id = jobs[i].id,
                               .task = "classify",
                               .feature = "triage",
                               .provider = "fake",
                               .model = "s",
                               .attempt = k + 1,
                               .input_tokens = 1000,
                               .output_tokens = 100,
                               .cost_usd = 0.0015,
                               .outcome = "ok"};
      ck_assert(vd_llm_store_ledger_add(store, &row, &err));
    }
  }
  vd_llm_store_close(store);
  char *argv[] = {"prompts", "stats",      "classify", "--prompts-dir",
                  e.prompts, "--data-dir", e.data,     NULL};
  captured c = call(vd_verb_prompts, 7, argv);
  ck_assert_msg(c.rc == 0, "%s", c.err);
  char want[400];
  /* v1: 2 jobs, 3 calls, $0.0045, $0.00225/job, mean 200 ms, 1 of 2 failed validation */
  snprintf(want, sizeof want, "| %s | 12 | 2 | 3 | 0.004500 | 0.002250 | 200.0 | 1 of 2 (50.0%%) |",
           e.ids[0]);
  ck_assert_msg(strstr(c.out, want), "%s\nnot in\n%s", want, c.out);
  snprintf(want, sizeof want, "| %s | 12 | 2 | 1 | 0.001500 | 0.000750 | 25.5 | 0 of 1 (0.0%%) |",
           e.ids[1]);
  ck_assert_msg(strstr(c.out, want), "%s\nnot in\n%s", want, c.out);
  snprintf(want, sizeof want, "| %s | 12 | 0 | 0 |", e.ids[2]);
  ck_assert_msg(strstr(c.out, want), "%s\nnot in\n%s", want, c.out);
  release(&c);
  eval_env_done(&e);
}
END_TEST

START_TEST(test_statistics) {
  double lo, hi;
  vd_eval_wilson(8, 10, 0.95, &lo, &hi);
  ck_assert_double_eq_tol(lo, 0.4902, 1e-4);
  ck_assert_double_eq_tol(hi, 0.9433, 1e-4);
  vd_eval_wilson(0, 0, 0.95, &lo, &hi);
  ck_assert(lo == 0 && hi == 1);
  /* Fisher's exact test, two-sided: the 2x2 table [[1, 9], [11, 3]] has p = 0.002759. */
  ck_assert_double_eq_tol(vd_eval_fisher_p(1, 10, 11, 14), 0.002759, 1e-5);
  ck_assert_double_eq_tol(vd_eval_fisher_p(5, 10, 5, 10), 1.0, 1e-9);
}
END_TEST

START_TEST(test_extract_rules_fallback_matches_the_rules_evaluator) {
  char golden[512];
  if (!vd_test_shared_path("data/extraction/golden.jsonl", golden, sizeof golden)) return;
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  char out[400];
  snprintf(out, sizeof out, "%s/out", env.dir);
  char *argv[] = {"eval", "--task",     "extract", "--golden", golden, "--prompt",
                  "v1",   "--provider", "none",    "--out",    out,    NULL};
  captured c = call(vd_verb_eval, 11, argv);
  ck_assert_msg(c.rc == 0, "%s", c.err);
  release(&c);
  /* a FIFO where a report goes: refused at once (opening it to write would wait for a reader) */
  char other[420], fifo[450];
  snprintf(other, sizeof other, "%s/other", env.dir);
  snprintf(fifo, sizeof fifo, "%s/report.md", other);
  ck_assert_int_eq(mkdir(other, 0755), 0);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  argv[10] = other;
  alarm(60);
  c = call(vd_verb_eval, 11, argv);
  alarm(0);
  ck_assert_int_ne(c.rc, 0);
  ck_assert_msg(strstr(c.err, "report.md is a FIFO (named pipe), not a regular file"), "%s", c.err);
  release(&c);
  unlink(fifo);
  argv[10] = out;
  char path[500];
  snprintf(path, sizeof path, "%s/report.json", out);
  json_t *report = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(report);
  vd_error err;
  vd_gazetteer *g = vd_gazetteer_load(VERDICT_SOURCE_DIR "/examples/triage/gazetteer.tsv", &err);
  vd_extract_eval *ev = vd_extract_eval_golden(g, golden, &err);
  ck_assert_ptr_nonnull(ev);
  json_t *rules = vd_extract_eval_json(ev);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(report, "overall"), "cases")),
                   json_integer_value(json_object_get(rules, "rows")));
  ck_assert_double_eq_tol(
      json_number_value(json_object_get(json_object_get(report, "overall"), "pass_rate")),
      json_number_value(json_object_get(rules, "rows_all_correct")), 1e-9);
  const char *field;
  json_t *acc;
  json_object_foreach(json_object_get(rules, "fields"), field, acc) {
    double ours = json_number_value(
        json_object_get(json_object_get(json_object_get(report, "fields"), field), "pass_rate"));
    ck_assert_double_eq_tol(ours, json_number_value(acc), 1e-9);
  }
  ck_assert_str_eq(json_string_value(json_object_get(report, "provider")), "none");
  json_decref(rules);
  vd_extract_eval_free(ev);
  vd_gazetteer_free(g);
  json_decref(report);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_itinerary_checks) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  vd_error err;
  vd_llm_tasks *tasks = vd_llm_tasks_load(&env.cfg, &err);
  ck_assert_msg(tasks != NULL, "%s", err.message);
  const json_t *schema = vd_llm_tasks_output_schema(tasks, VD_LLM_TASK_ITINERARY);
  json_t *input = json_loads(llm_env_kyoto_trip, 0, NULL);
  json_object_set_new(input, "interests", json_pack("[s,s]", "food", "temples"));
  json_t *c = json_pack("{s:s,s:s,s:O,s:{s:i}}", "id", "k", "slice", "s", "input", input,
                        "expected", "max_activities_per_day", 2);
  json_t *good = json_loads(llm_env_kyoto_answer, 0, NULL);
  json_object_set_new(good, "source", json_string("llm")); /* the job's marker is not checked */
  json_t *sc = vd_eval_score(VD_LLM_TASK_ITINERARY, schema, c, good);
  ck_assert_msg(json_is_true(json_object_get(sc, "pass")), "%s", json_dumps(sc, 0));
  json_decref(sc);
  /* a missing day fails days and dates; an unknown key fails the schema */
  json_t *bad = json_deep_copy(good);
  json_array_remove(json_object_get(bad, "days"), 1);
  json_object_set_new(bad, "hotel", json_string("x"));
  sc = vd_eval_score(VD_LLM_TASK_ITINERARY, schema, c, bad);
  const json_t *f = json_object_get(sc, "fields");
  ck_assert(json_is_false(json_object_get(f, "schema")) &&
            json_is_false(json_object_get(f, "days")) &&
            json_is_false(json_object_get(f, "dates")));
  json_decref(sc);
  json_decref(bad);
  /* a requested interest no activity serves, a wrong date, too many activities */
  bad = json_deep_copy(good);
  json_t *day1 = json_array_get(json_object_get(bad, "days"), 0);
  json_t *acts = json_object_get(day1, "activities");
  json_object_del(json_array_get(acts, 1), "interest");
  json_array_append_new(acts, json_pack("{s:s,s:s}", "time", "afternoon", "title", "Walk"));
  json_object_set_new(json_array_get(json_object_get(bad, "days"), 1), "date",
                      json_string("2027-03-14"));
  sc = vd_eval_score(VD_LLM_TASK_ITINERARY, schema, c, bad);
  f = json_object_get(sc, "fields");
  ck_assert(json_is_true(json_object_get(f, "schema")) && json_is_true(json_object_get(f, "days")));
  ck_assert(json_is_false(json_object_get(f, "dates")));
  ck_assert(json_is_false(json_object_get(f, "constraints")));
  char *diff = json_dumps(json_object_get(json_object_get(sc, "diff"), "constraints"), 0);
  ck_assert_msg(strstr(diff, "interest food is not served") && strstr(diff, "day 1 has 3"), "%s",
                diff);
  free(diff);
  json_decref(sc);
  /* no result at all (a failed job): every check fails */
  sc = vd_eval_score(VD_LLM_TASK_ITINERARY, schema, c, NULL);
  ck_assert(json_is_false(json_object_get(sc, "pass")));
  json_decref(sc);
  json_decref(bad);
  json_decref(good);
  json_decref(c);
  json_decref(input);
  vd_llm_tasks_free(tasks);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_bad_usage_and_golden_errors) {
  char *none[] = {"eval", "--task", "extract", NULL};
  captured c = call(vd_verb_eval, 3, none);
  ck_assert_int_eq(c.rc, 2);
  release(&c);
  char bad[] = "/tmp/verdict-golden-XXXXXX";
  int fd = mkstemp(bad);
  ck_assert_int_ge(fd, 0);
  close(fd);
  write_file(bad,
             "{\"id\": \"a\", \"slice\": \"s\", \"input\": {\"text\": \"x\"}, \"expected\": "
             "{\"intent\": \"oos\", \"route\": \"r\"}}\n{\"id\": \"b\", \"slice\": 3}\n");
  vd_error err;
  ck_assert_ptr_null(vd_eval_load_golden(VD_LLM_TASK_CLASSIFY, bad, &err));
  ck_assert_int_eq(err.line, 2);
  ck_assert(strstr(err.message, "slice"));
  unlink(bad);
}
END_TEST

int main(void) {
  Suite *s = suite_create("llm_prompts");
  TCase *tc = tcase_create("prompts");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_load_errors_have_positions);
  tcase_add_test(tc, test_ids_render_and_inline_schema);
  tcase_add_test(tc, test_gate_blocks_a_slice_regression_and_passes_a_uniform_gain);
  tcase_add_test(tc, test_activate_and_rollback_restore_the_old_behaviour);
  tcase_add_test(tc, test_reload_swaps_prompts_atomically);
  tcase_add_test(tc, test_list_show_diff);
  tcase_add_test(tc, test_stats_from_the_ledger);
  tcase_add_test(tc, test_statistics);
  tcase_add_test(tc, test_extract_rules_fallback_matches_the_rules_evaluator);
  tcase_add_test(tc, test_itinerary_checks);
  tcase_add_test(tc, test_bad_usage_and_golden_errors);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
