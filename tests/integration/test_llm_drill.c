/* The LLM-provider drill (issue 11): the real `verdict serve` with the triage deployment and the
 * LLM layer on the fake provider, through one simulated hour in which the provider is healthy,
 * down (connection refused), failing (500, 529, 429), slow (first token beyond the timeout, slow
 * drip beyond the deadline), truncated, undecodable, answering prose or JSON of the wrong shape,
 * flapping, then healthy again — with concurrent triage load that escalates to the LLM layer and
 * itinerary requests against a small daily budget throughout.
 *
 * Time is compressed by configuration, not by a test hook: one simulated minute is PHASE_MS of
 * wall time and every LLM time constant (timeouts, backoff, breaker cooldown, deadlines,
 * retry-after) is set in the config's llm: section at the same scale (see drill_config).
 *
 * Asserted: (a) every triage request answers 200 and the p99 during the faults stays within a
 * noise bound of the healthy p99 of the same run; (b) every job ends terminal, with a reason when
 * it fell back or failed, none queued or running after the drain; (c) the ledger never exceeds a
 * budget, no job makes more calls than max_attempts (+ one repair), every call belongs to a job,
 * and while the breaker is open calls stop; (d) after a SIGKILL and restart every decision id
 * answered is readable and every escalation's job is there, terminal, pointing at its decision. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_fake_provider.h"
#include "vd_itest.h"
#include "vd_llm_store.h"
#include "vd_test.h"
#include "vd_time.h"

enum {
  PHASES = 60,    /* simulated minutes */
  PHASE_MS = 250, /* wall time per simulated minute: the hour takes 15 s */
  TRIAGE_CLIENTS = 2,
  MAX_ATTEMPTS = 3,
  BREAKER_FAILURES = 5,
  BREAKER_COOLDOWN_MS = 250, /* one simulated minute */
  MAX_IN_FLIGHT = 8,
  FIRST_TOKEN_TIMEOUT_MS = 150,
  DRAIN_MS = 20000,
  FAILING_FROM = 10, /* minutes in which every provider call fails */
  FAILING_TO = 40,
};
static const double ITINERARY_BUDGET_USD = 0.3; /* runs out during the healthy start */
static const double TRIAGE_BUDGET_USD = 100.0;  /* never reached: triage keeps calling */

typedef struct phase {
  fake_fault fault;
  int delay_ms;
  const char *retry_after;
} phase;

/* The simulated hour, minute by minute. */
static phase schedule(int minute) {
  static const fake_fault flapping[] = {FAKE_OK, FAKE_REFUSE,   FAKE_OK, FAKE_HTTP_500,
                                        FAKE_OK, FAKE_HTTP_529, FAKE_OK, FAKE_REFUSE};
  if (minute < 10) return (phase){FAKE_OK, 0, NULL};
  /* three simulated minutes at least per kind: a few breaker cooldowns, so each gets its calls */
  if (minute < 15) return (phase){FAKE_REFUSE, 0, NULL};             /* down */
  if (minute < 18) return (phase){FAKE_HTTP_500, 0, NULL};           /* failing */
  if (minute < 21) return (phase){FAKE_HTTP_529, 0, NULL};           /* overloaded */
  if (minute < 24) return (phase){FAKE_HTTP_429, 0, "0.02"};         /* rate limited */
  if (minute < 27) return (phase){FAKE_CUT_MID_STREAM, 0, NULL};     /* truncated */
  if (minute < 30) return (phase){FAKE_NO_STOP, 0, NULL};            /* truncated, cleanly */
  if (minute < 33) return (phase){FAKE_MALFORMED_EVENT, 0, NULL};    /* invalid JSON events */
  if (minute < 37) return (phase){FAKE_SLOW_FIRST_TOKEN, 600, NULL}; /* beyond the timeout */
  if (minute < 40) return (phase){FAKE_SLOW_DRIP, 60, NULL};         /* beyond the deadline */
  if (minute < 44) return (phase){FAKE_NOT_JSON, 0, NULL};           /* prose answers */
  if (minute < 48) return (phase){FAKE_WRONG_SHAPE, 0, NULL};        /* valid JSON, wrong shape */
  if (minute < 56) return (phase){flapping[minute - 48], 0, NULL};
  return (phase){FAKE_OK, 0, NULL}; /* recovery */
}

static const char *fault_name(fake_fault f) {
  static const char *const names[FAKE_FAULT_COUNT] = {
      "ok",       "http_429",    "http_529",        "http_500",
      "http_400", "http_401",    "spend_limit",     "cut_mid_stream",
      "no_stop",  "error_event", "malformed_event", "slow_first_token",
      "refuse",   "slow_drip",   "not_json",        "wrong_shape"};
  return f < FAKE_FAULT_COUNT ? names[f] : "?";
}

/* ---- the server ---- */

static vd_itest_server server;
static fake_provider *fake;

static const char classify_answer[] =
    "{\"intent\": \"oos\", \"route\": \"general_support\", \"confidence\": 0.9, \"rationale\": "
    "\"not something the model knows\"}";

/* A valid answer for whatever the request asks: a one-day itinerary on the trip's start date for
 * the large tier, the classification for the small one. */
static char *answer_for(void *ctx, const json_t *body) {
  (void)ctx;
  const char *model = json_string_value(json_object_get(body, "model"));
  if (!model || strcmp(model, "fake-large") != 0) return strdup(classify_answer);
  const json_t *first = json_array_get(json_object_get(body, "messages"), 0);
  const char *content = json_string_value(json_object_get(first, "content"));
  const char *at = content ? strstr(content, "\"start_date\":\"") : NULL;
  char date[11] = "2027-01-01";
  if (at) memcpy(date, at + strlen("\"start_date\":\""), 10);
  vd_buf b = {0};
  vd_buf_printf(&b,
                "{\"destination\": \"Kyoto, Japan\", \"summary\": \"A day of temples.\", \"days\": "
                "[{\"day\": 1, \"date\": \"%s\", \"activities\": [{\"time\": \"morning\", "
                "\"title\": \"Fushimi Inari\"}]}]}",
                date);
  return vd_buf_take(&b);
}

/* The drill's LLM settings: the shipped defaults divided by ~200 (30 s timeouts → 150 ms, a 30 s
 * breaker cooldown → 250 ms, a 1 s retry-after → 20 ms), as an operator would configure them. */
static void drill_config(FILE *f) {
  fprintf(f,
          "llm:\n"
          "  prompts_dir: %s/examples/prompts\n"
          "  catalogue: %s/examples/itineraries/catalogue.json\n"
          "  gazetteer: %s/examples/triage/gazetteer.tsv\n"
          "  queue_capacity: 8192\n"
          "  max_in_flight: %d\n"
          "  max_attempts: %d\n"
          "  backoff_base_ms: 5\n"
          "  backoff_max_ms: 40\n"
          "  connect_timeout_ms: 100\n"
          "  first_token_timeout_ms: %d\n"
          "  idle_timeout_ms: 100\n"
          "  breaker_failures: %d\n"
          "  breaker_cooldown_ms: %d\n"
          "  cache_ttl_s: 3600\n"
          "  providers:\n"
          "    fake: {wire: anthropic, base_url: \"%s\", api_key_env: VD_DRILL_FAKE_KEY}\n"
          "  tiers:\n"
          "    small: {provider: fake, model: fake-small, usd_per_mtok_input: 1, "
          "usd_per_mtok_output: 5, max_output_tokens: 1024}\n"
          "    large: {provider: fake, model: fake-large, usd_per_mtok_input: 3, "
          "usd_per_mtok_output: 15, max_output_tokens: 4096}\n"
          "  tasks:\n"
          "    classify: {deadline_ms: 600}\n"
          "    itinerary: {deadline_ms: 1500}\n"
          "  budgets:\n"
          "    itineraries: %g\n"
          "    triage: %g\n",
          VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR, MAX_IN_FLIGHT, MAX_ATTEMPTS,
          FIRST_TOKEN_TIMEOUT_MS, BREAKER_FAILURES, BREAKER_COOLDOWN_MS,
          fake_provider_anthropic_url(fake), ITINERARY_BUDGET_USD, TRIAGE_BUDGET_USD);
}

/* The triage deployment copy gets one rule of the drill's own: a text starting "drill:" always
 * escalates to classify, whatever the (retrainable) model says about it. */
static void add_drill_rule(const char *root) {
  char path[512];
  snprintf(path, sizeof path, "%s/triage/rules.yaml", root);
  size_t size = 0;
  char *rules = vd_read_file(path, 1 << 20, &size, NULL);
  ck_assert_ptr_nonnull(rules);
  char *tests = strstr(rules, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "%.*s\n"
          "  - id: drill-classify\n"
          "    description: The LLM drill's requests always go to the LLM.\n"
          "    stage: after_model\n"
          "    priority: 1000\n"
          "    when: context.text.startsWith(\"drill:\")\n"
          "    then: { escalate: classify }\n"
          "%s",
          (int)(tests - rules), rules, tests);
  fclose(f);
  free(rules);
}

static void start_server(void) {
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  char command[1024];
  snprintf(command, sizeof command, "cp -r '%s/examples/triage' '%s/triage'", VERDICT_SOURCE_DIR,
           server.root);
  ck_assert_int_eq(system(command), 0);
  add_drill_rule(server.root);
  size_t size = 0;
  char *config = vd_read_file(server.config, 1 << 20, &size, NULL);
  ck_assert_ptr_nonnull(config);
  char *at = strstr(config, "deployments: [promotions]");
  ck_assert_ptr_nonnull(at);
  FILE *f = fopen(server.config, "w");
  fprintf(f, "%.*sdeployments: [promotions, triage]%s", (int)(at - config), config,
          at + strlen("deployments: [promotions]"));
  drill_config(f);
  fclose(f);
  free(config);
  setenv("VD_DRILL_FAKE_KEY", "fake-key", 1);
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
}

/* ---- a keep-alive HTTP client ---- */

typedef struct client {
  CURL *curl;
  struct curl_slist *headers;
  vd_buf body;
} client;

static size_t collect(char *data, size_t size, size_t n, void *ctx) {
  vd_buf_append(ctx, data, size * n);
  return size * n;
}

static void client_init(client *c, const char *key) {
  memset(c, 0, sizeof *c);
  c->curl = curl_easy_init();
  char auth[128];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
  c->headers = curl_slist_append(NULL, auth);
  c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->body);
  curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
}

static void client_free(client *c) {
  curl_slist_free_all(c->headers);
  curl_easy_cleanup(c->curl);
  vd_buf_free(&c->body);
}

/* One request; returns the status (0: transport error) and the parsed body in *json. */
static long client_call(client *c, const char *method, const char *path, const char *body,
                        json_t **json) {
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", server.port, path);
  c->body.len = 0;
  curl_easy_setopt(c->curl, CURLOPT_URL, url);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  } else {
    curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
  }
  long status = 0;
  if (curl_easy_perform(c->curl) == CURLE_OK)
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
  if (json) *json = c->body.len ? json_loadb(c->body.data, c->body.len, 0, NULL) : NULL;
  return status;
}

/* ---- the load ---- */

typedef struct sample {
  int phase;
  bool escalating; /* a "drill:" text */
  double ms;
  long status;
  char decision_id[40];
  char job_id[40]; /* "" when no job was created */
  bool escalated;  /* the response had an escalation */
} sample;

typedef struct load {
  atomic_int phase;
  atomic_bool stop;
  int pause_us;
} load;

typedef struct worker {
  load *load;
  int index;
  bool itineraries; /* POST /v1/itineraries instead of triage */
  sample *samples;
  size_t count, capacity;
} worker;

static sample *next_sample(worker *w) {
  if (w->count == w->capacity) {
    w->capacity = w->capacity ? w->capacity * 2 : 1024;
    w->samples = realloc(w->samples, w->capacity * sizeof *w->samples);
  }
  sample *s = &w->samples[w->count++];
  memset(s, 0, sizeof *s);
  return s;
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static void *run_worker(void *arg) {
  worker *w = arg;
  client c;
  client_init(&c, "demo-score");
  for (int n = 0; !atomic_load(&w->load->stop); n++) {
    sample *s = next_sample(w);
    s->phase = atomic_load(&w->load->phase);
    char body[512];
    const char *path = "/v1/triage";
    if (w->itineraries) {
      /* one-day trips on distinct dates: none is answered from the cache */
      long day = 20000 + n; /* days since 1970 */
      time_t t = (time_t)day * 86400;
      struct tm tm;
      gmtime_r(&t, &tm);
      char date[16];
      strftime(date, sizeof date, "%Y-%m-%d", &tm);
      snprintf(body, sizeof body,
               "{\"destination\": \"Kyoto, Japan\", \"start_date\": \"%s\", \"end_date\": \"%s\", "
               "\"travelers\": 2}",
               date, date);
      path = "/v1/itineraries";
      s->escalating = true;
    } else {
      s->escalating = n % 2 == 0;
      if (s->escalating)
        snprintf(body, sizeof body,
                 "{\"text\": \"drill: client %d request %d, what can you tell me about this?\", "
                 "\"channel\": \"web\", \"subject\": {\"id\": \"drill-%d\"}}",
                 w->index, n, w->index);
      else
        snprintf(body, sizeof body,
                 "{\"text\": \"my luggage never showed up after my flight\", \"channel\": "
                 "\"web\", \"subject\": {\"id\": \"drill-%d\"}}",
                 w->index);
    }
    json_t *json = NULL;
    uint64_t t0 = vd_monotonic_ns();
    s->status = client_call(&c, "POST", path, body, &json);
    s->ms = (double)(vd_monotonic_ns() - t0) / 1e6;
    if (w->itineraries) {
      if (str(json, "job_id")) snprintf(s->job_id, sizeof s->job_id, "%s", str(json, "job_id"));
    } else if (json) {
      if (str(json, "decision_id"))
        snprintf(s->decision_id, sizeof s->decision_id, "%s", str(json, "decision_id"));
      const json_t *esc = json_object_get(json, "escalation");
      s->escalated = json_is_object(esc);
      if (str(esc, "job_id")) snprintf(s->job_id, sizeof s->job_id, "%s", str(esc, "job_id"));
    }
    json_decref(json);
    usleep((useconds_t)w->load->pause_us);
  }
  client_free(&c);
  return NULL;
}

/* ---- reading the server's counters ---- */

/* The value of a Prometheus sample line "NAME VALUE" (name with its labels), -1 when absent. */
static double metric(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

typedef struct counters {
  double calls, trips, retries, queued, running, breaker_open;
} counters;

static counters read_counters(client *c) {
  c->body.len = 0;
  long status = client_call(c, "GET", "/metrics", NULL, NULL);
  ck_assert_int_eq(status, 200);
  vd_buf_append(&c->body, "", 1);
  const char *t = c->body.data;
  counters k = {.calls = metric(t, "verdict_llm_provider_calls_total"),
                .trips = metric(t, "verdict_llm_breaker_trips_total"),
                .retries = metric(t, "verdict_llm_retries_total"),
                .queued = metric(t, "verdict_llm_jobs{state=\"queued\"}"),
                .running = metric(t, "verdict_llm_jobs{state=\"running\"}"),
                .breaker_open = metric(t, "verdict_llm_breaker_open{provider=\"fake\"}")};
  ck_assert_msg(k.calls >= 0 && k.trips >= 0 && k.queued >= 0, "metrics missing: %s", t);
  return k;
}

/* ---- statistics ---- */

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* p99 of the triage samples taken while the provider was healthy (healthy = true: minutes 1-9,
 * the healthy minutes of the flapping and the recovery — spread over the hour, so a burst of load
 * from elsewhere on the machine weighs on both sides alike) or faulty; escalating ones only (1),
 * others only (0) or both (-1). Minute 0 warms up. */
static double p99(const worker *ws, bool healthy, int escalating, size_t *count) {
  size_t n = 0, cap = 0;
  double *ms = NULL;
  for (int w = 0; w < TRIAGE_CLIENTS; w++)
    for (size_t i = 0; i < ws[w].count; i++) {
      const sample *s = &ws[w].samples[i];
      if (s->phase < 1 || (schedule(s->phase).fault == FAKE_OK) != healthy) continue;
      if (escalating >= 0 && s->escalating != (escalating == 1)) continue;
      if (n == cap) ms = realloc(ms, (cap = cap ? cap * 2 : 256) * sizeof *ms);
      ms[n++] = s->ms;
    }
  double v = 0;
  if (n) {
    qsort(ms, n, sizeof *ms, compare_double);
    v = ms[(size_t)ceil(0.99 * (double)n) - 1];
  }
  free(ms);
  if (count) *count = n;
  return v;
}

static bool terminal(const char *state) {
  return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "fallback") == 0 ||
                   strcmp(state, "failed") == 0);
}

START_TEST(provider_down_slow_and_garbage_for_an_hour) {
  bool sanitizer = getenv("VERDICT_UNDER_SANITIZER") != NULL;
  fake = fake_provider_start();
  ck_assert_ptr_nonnull(fake);
  fake_provider_set_pacing(fake, 0, 8);
  fake_provider_set_responder(fake, answer_for, NULL);
  start_server();

  load ld = {.pause_us = sanitizer ? 8000 : 4000};
  worker workers[TRIAGE_CLIENTS + 1];
  pthread_t threads[TRIAGE_CLIENTS + 1];
  memset(workers, 0, sizeof workers);
  for (int i = 0; i <= TRIAGE_CLIENTS; i++) {
    workers[i] = (worker){.load = &ld, .index = i, .itineraries = i == TRIAGE_CLIENTS};
    ck_assert_int_eq(pthread_create(&threads[i], NULL, run_worker, &workers[i]), 0);
  }
  client admin;
  client_init(&admin, "demo-score");
  counters at[PHASES + 1];
  int fake_requests[PHASES + 1];
  uint64_t start_ns = vd_monotonic_ns();
  for (int m = 0; m < PHASES; m++) {
    phase p = schedule(m);
    if (m == 0 || p.fault != schedule(m - 1).fault)
      fake_provider_set_mode(fake, p.fault, p.delay_ms, p.retry_after);
    at[m] = read_counters(&admin);
    fake_requests[m] = fake_provider_request_count(fake);
    atomic_store(&ld.phase, m);
    uint64_t until = start_ns + (uint64_t)(m + 1) * PHASE_MS * 1000000ULL;
    while (vd_monotonic_ns() < until) usleep(2000);
  }
  at[PHASES] = read_counters(&admin);
  fake_requests[PHASES] = fake_provider_request_count(fake);
  atomic_store(&ld.stop, true);
  for (int i = 0; i <= TRIAGE_CLIENTS; i++) pthread_join(threads[i], NULL);
  double hour_s = (double)(vd_monotonic_ns() - start_ns) / 1e9;

  /* Drain: every job reaches a terminal state. */
  uint64_t drain_start = vd_monotonic_ns();
  counters end = read_counters(&admin);
  while ((end.queued > 0 || end.running > 0) &&
         vd_monotonic_ns() - drain_start < (uint64_t)DRAIN_MS * 1000000ULL) {
    usleep(20000);
    end = read_counters(&admin);
  }
  double drain_ms = (double)(vd_monotonic_ns() - drain_start) / 1e6;
  ck_assert_msg(end.queued == 0 && end.running == 0, "after %.0f ms: %.0f queued, %.0f running",
                drain_ms, end.queued, end.running);
  ck_assert_msg(end.breaker_open == 0, "the breaker is still open after the recovery");

  /* (a) the hot path: every triage request answered, latency as when the provider was healthy */
  size_t requests = 0, escalations = 0, failed = 0, jobs = 0, itinerary_jobs = 0;
  for (int w = 0; w <= TRIAGE_CLIENTS; w++)
    for (size_t i = 0; i < workers[w].count; i++) {
      const sample *s = &workers[w].samples[i];
      if (workers[w].itineraries) {
        ck_assert_msg(s->status == 202 || s->status == 200, "itinerary answered %ld", s->status);
        itinerary_jobs += s->job_id[0] != 0;
        continue;
      }
      requests++;
      failed += s->status != 200;
      if (s->escalating) {
        ck_assert_msg(s->escalated, "a drill request was not escalated");
        ck_assert_msg(s->job_id[0], "an escalation without its job (queue full?)");
      }
      escalations += s->escalated;
      jobs += s->job_id[0] != 0;
    }
  ck_assert_msg(failed == 0, "%zu of %zu triage requests failed", failed, requests);
  size_t n_base, n_fault;
  double base = p99(workers, true, -1, &n_base);
  double faults = p99(workers, false, -1, &n_fault);
  double base_esc = p99(workers, true, 1, NULL), base_plain = p99(workers, true, 0, NULL);
  double fault_esc = p99(workers, false, 1, NULL), fault_plain = p99(workers, false, 0, NULL);
  /* The bound: 3x the healthy p99 or 5 ms above it, whichever is larger — wide enough for a
   * shared CI machine's scheduling noise, and still well below the shortest provider time a
   * request could wait for if it ever waited (connect 100 ms, first token 150 ms). */
  double bound = fmax(3 * base, base + 5);

  /* (b) every job terminal, (c) attempts bounded, every call a job's, (d) escalations have jobs */
  long sum_attempts = 0, max_attempts = 0;
  char budget_reason[512] = "", recovery_reason[512] = "";
  size_t by_state[3] = {0}, by_llm = 0, recovered = 0;
  for (int w = 0; w <= TRIAGE_CLIENTS; w++)
    for (size_t i = 0; i < workers[w].count; i++) {
      const sample *s = &workers[w].samples[i];
      if (!s->job_id[0]) continue;
      char path[128];
      snprintf(path, sizeof path, "/v1/jobs/%s", s->job_id);
      json_t *job = NULL;
      ck_assert_int_eq(client_call(&admin, "GET", path, NULL, &job), 200);
      const char *state = str(job, "state");
      ck_assert_msg(terminal(state), "job %s is %s after the drain", s->job_id, state);
      if (strcmp(state, "succeeded") != 0)
        ck_assert_msg(str(job, "reason") && str(job, "reason")[0], "job %s: %s without a reason",
                      s->job_id, state);
      by_state[strcmp(state, "succeeded") == 0 ? 0 : strcmp(state, "fallback") == 0 ? 1 : 2]++;
      const char *reason = str(job, "reason");
      if (reason && strstr(reason, "daily LLM budget") && !budget_reason[0])
        snprintf(budget_reason, sizeof budget_reason, "%s", reason);
      json_int_t attempts = json_integer_value(json_object_get(job, "attempts"));
      ck_assert_msg(attempts <= MAX_ATTEMPTS + 1, "job %s made %lld calls", s->job_id,
                    (long long)attempts);
      sum_attempts += (long)attempts;
      if (attempts > max_attempts) max_attempts = (long)attempts;
      bool llm = strcmp(str(job, "handled_by"), "llm") == 0;
      by_llm += llm;
      recovered += llm && s->phase >= 56;
      if (!llm && s->phase >= 56 && !recovery_reason[0] && str(job, "reason"))
        snprintf(recovery_reason, sizeof recovery_reason, "%s", str(job, "reason"));
      if (!workers[w].itineraries) ck_assert_str_eq(str(job, "ref"), s->decision_id);
      json_decref(job);
    }

  /* The breaker stops calls: over minutes 10-39 (down, failing, truncated, slow: every call
   * fails) at most the calls that opened it, those already in flight, and one trial per
   * cooldown — instead of up to max_attempts calls for each of the jobs submitted meanwhile. */
  double span_calls = at[FAILING_TO].calls - at[FAILING_FROM].calls;
  double span_limit = BREAKER_FAILURES + MAX_IN_FLIGHT +
                      (double)(FAILING_TO - FAILING_FROM) * PHASE_MS / BREAKER_COOLDOWN_MS + 2;
  size_t span_jobs = 0;
  for (int w = 0; w <= TRIAGE_CLIENTS; w++)
    for (size_t i = 0; i < workers[w].count; i++)
      span_jobs += workers[w].samples[i].phase >= FAILING_FROM &&
                   workers[w].samples[i].phase < FAILING_TO && workers[w].samples[i].job_id[0];

  fprintf(stderr,
          "llm drill: simulated hour in %.1f s, drain %.0f ms; %zu triage requests (0 failed), "
          "%zu escalations, %zu triage jobs + %zu itinerary jobs: %zu succeeded, %zu fallback, "
          "%zu failed, %zu answered by the LLM (%zu after recovery)\n",
          hour_s, drain_ms, requests, escalations, jobs, itinerary_jobs, by_state[0], by_state[1],
          by_state[2], by_llm, recovered);
  fprintf(stderr,
          "llm drill: provider calls %.0f (max %ld per job, limit %d + 1 repair), received by the "
          "provider %d, retries %.0f, breaker trips %.0f; calls in minutes 10-39 %.0f for %zu "
          "jobs (limit %.0f)\n",
          end.calls, max_attempts, MAX_ATTEMPTS, fake_requests[PHASES], end.retries, end.trips,
          span_calls, span_jobs, span_limit);
  fprintf(stderr, "llm drill: faults injected (requests answered so):");
  for (int f = 1; f < FAKE_FAULT_COUNT; f++)
    if (fake_provider_fault_count(fake, (fake_fault)f))
      fprintf(stderr, " %s %d", fault_name((fake_fault)f), fake_provider_fault_count(fake, f));
  /* Every fault of the schedule reached the layer at least once (a trial call, at least). */
  for (int m = 0; m < PHASES; m++) {
    fake_fault f = schedule(m).fault;
    ck_assert_msg(fake_provider_fault_count(fake, f) > 0, "fault %s never injected", fault_name(f));
  }
  double refused_calls = 0;
  for (int m = 0; m < PHASES; m++)
    if (schedule(m).fault == FAKE_REFUSE) refused_calls += at[m + 1].calls - at[m].calls;
  fprintf(stderr, " (outages), calls refused ~%.0f\n", refused_calls);
  fprintf(stderr,
          "llm drill: triage p99 healthy %.2f ms (n=%zu; escalating %.2f, not %.2f), faults "
          "%.2f ms (n=%zu; escalating %.2f, not %.2f); bound %.2f ms\n",
          base, n_base, base_esc, base_plain, faults, n_fault, fault_esc, fault_plain, bound);
  ck_assert_msg((double)sum_attempts == end.calls, "jobs made %ld calls, the layer counted %.0f",
                sum_attempts, end.calls);
  ck_assert_msg(fake_requests[PHASES] <= (int)end.calls, "the provider saw calls no job made");
  ck_assert_msg(recovered > 0, "no job succeeded through the LLM after the provider recovered (%s)",
                recovery_reason);
  ck_assert_msg(span_calls <= span_limit, "%.0f calls while failing (limit %.0f, %zu jobs)",
                span_calls, span_limit, span_jobs);
  ck_assert_msg(end.trips >= 1, "the breaker never opened");
  ck_assert_msg(faults <= bound, "triage p99 %.2f ms during the faults, healthy %.2f ms", faults,
                base);

  /* Budgets: no feature's ledger passes its budget on any day. */
  char path[512];
  snprintf(path, sizeof path, "%s/llm.sqlite", server.data_dir);
  vd_error err;
  vd_llm_store *store = vd_llm_store_open(path, false, &err);
  ck_assert_msg(store != NULL, "%s", err.message);
  json_t *costs = vd_llm_store_costs(store, "2000-01-01", "2999-12-31", &err);
  ck_assert_ptr_nonnull(costs);
  double itinerary_spend = 0;
  size_t i;
  json_t *row;
  json_array_foreach(costs, i, row) {
    double cost = json_real_value(json_object_get(row, "cost_usd"));
    const char *feature = str(row, "feature");
    double budget = strcmp(feature, "itineraries") == 0 ? ITINERARY_BUDGET_USD : TRIAGE_BUDGET_USD;
    ck_assert_msg(cost <= budget, "%s spent $%.4f of $%.4f", feature, cost, budget);
    if (strcmp(feature, "itineraries") == 0) itinerary_spend += cost;
  }
  json_decref(costs);
  vd_llm_store_close(store);
  fprintf(stderr, "llm drill: itineraries spent $%.4f of $%.2f (%s)\n", itinerary_spend,
          ITINERARY_BUDGET_USD, budget_reason);
  ck_assert_msg(budget_reason[0], "the itinerary budget never ran out");

  /* (d) nothing lost: SIGKILL, restart, every decision and job is there. */
  client_free(&admin);
  ck_assert_int_eq(vd_itest_stop(&server, SIGKILL), 128 + SIGKILL);
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not restart");
  client reader;
  client_init(&reader, "demo-compliance");
  client jobs_reader;
  client_init(&jobs_reader, "demo-score");
  for (int w = 0; w <= TRIAGE_CLIENTS; w++)
    for (size_t k = 0; k < workers[w].count; k++) {
      const sample *s = &workers[w].samples[k];
      char p[128];
      if (s->decision_id[0]) {
        snprintf(p, sizeof p, "/v1/decisions/%s", s->decision_id);
        ck_assert_msg(client_call(&reader, "GET", p, NULL, NULL) == 200,
                      "decision %s lost after the kill", s->decision_id);
      }
      if (s->job_id[0]) {
        json_t *job = NULL;
        snprintf(p, sizeof p, "/v1/jobs/%s", s->job_id);
        ck_assert_msg(client_call(&jobs_reader, "GET", p, NULL, &job) == 200,
                      "job %s lost after the kill", s->job_id);
        ck_assert_msg(terminal(str(job, "state")), "job %s is %s after the restart", s->job_id,
                      str(job, "state"));
        json_decref(job);
      }
    }
  client_free(&reader);
  client_free(&jobs_reader);
  for (int w = 0; w <= TRIAGE_CLIENTS; w++) free(workers[w].samples);
}
END_TEST

static void teardown(void) {
  if (server.pid > 0) vd_itest_stop(&server, SIGTERM);
  vd_itest_cleanup(&server);
  fake_provider_stop(fake);
  fake = NULL;
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Suite *s = suite_create("llm_drill");
  TCase *tc = tcase_create("drill");
  tcase_set_timeout(tc, 240);
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, provider_down_slow_and_garbage_for_an_hour);
  suite_add_tcase(s, tc);
  int rc = vd_test_run(s);
  curl_global_cleanup();
  return rc;
}
