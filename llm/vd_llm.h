/* vd_llm: the LLM layer's public API — asynchronous jobs for the tasks that need language
 * (extract, itinerary, classify), never awaited on a hot path.
 *
 *   vd_llm_config cfg; vd_llm_config_defaults(&cfg);   // conventional env vars, shipped tiers
 *   (optionally) vd_llm_config_from_json(&cfg, yaml_llm_section, &err);
 *   vd_llm *llm = vd_llm_open(&cfg, &err);              // opens DATA_DIR/llm.sqlite, resumes jobs,
 *                                                       // starts the worker thread
 *   vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, &opts, job_id, &err)
 *        → VD_LLM_SUBMITTED (202) | VD_LLM_CACHED (200, result ready) | VD_LLM_QUEUE_FULL (429)
 *          | VD_LLM_REJECTED (400: err.field names the bad input field)
 *   vd_llm_job(llm, job_id)                             // state JSON (GET /v1/jobs/{id})
 *   vd_llm_events(llm, job_id, &cursor, timeout_ms, …)  // pollable event cursor for SSE relaying
 *   vd_llm_close(llm);
 *
 * Lifecycle of a job: queued → running → succeeded | fallback | failed, every transition persisted
 * (a restart resumes queued and running jobs). "fallback" means the task's rules produced the
 * result (provider down, budget spent, no key, invalid output after one repair, deadline); "failed"
 * means no result at all (fallback disabled for the task). The job record says why (reason).
 *
 * Threads: vd_llm_submit/job/events/stats/costs are safe to call from any number of threads.
 * The on_done hook runs on the worker thread after the terminal state is stored; it must not
 * block for long and must not call vd_llm_close.
 *
 * Ownership: json_t results are new references (caller decrefs); json_t arguments are borrowed
 * (the layer copies what it keeps). The API key is read from the environment at vd_llm_open,
 * held in memory only, never logged, never stored, never part of any JSON this API returns. */
#ifndef VD_LLM_H
#define VD_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_buf.h"
#include "vd_error.h"
#include "vd_llm_provider.h"

typedef enum vd_llm_task {
  VD_LLM_TASK_EXTRACT = 0,   /* triage text → trip fields (rules extractor first) */
  VD_LLM_TASK_ITINERARY = 1, /* trip request → day-by-day itinerary (template fallback) */
  VD_LLM_TASK_CLASSIFY = 2,  /* out-of-scope / low-confidence triage text → intent and route */
  VD_LLM_TASK_COUNT = 3
} vd_llm_task;

const char *vd_llm_task_name(vd_llm_task task);
bool vd_llm_task_parse(const char *name, vd_llm_task *task);

typedef enum vd_llm_tier {
  VD_LLM_TIER_SMALL = 0,
  VD_LLM_TIER_LARGE = 1,
  VD_LLM_TIER_COUNT = 2
} vd_llm_tier;

enum {
  VD_LLM_MAX_PROVIDERS = 4,
  VD_LLM_MAX_BUDGETS = 16,
  VD_LLM_NAME_MAX = 64,
  VD_LLM_PATH_MAX = 1024,
  VD_LLM_JOB_ID_SIZE = 37, /* a UUIDv7 string and its NUL */
};

typedef struct vd_llm_provider_config {
  char name[VD_LLM_NAME_MAX];        /* how tiers refer to it: "anthropic", "local" ... */
  vd_llm_wire wire;                  /* Anthropic Messages or OpenAI-compatible chat */
  char base_url[VD_LLM_PATH_MAX];    /* "https://api.anthropic.com", "http://127.0.0.1:8000/v1" */
  char api_key_env[VD_LLM_NAME_MAX]; /* the environment variable holding the key ("" = none) */
  bool key_optional;                 /* a local server that needs no key */
} vd_llm_provider_config;

typedef struct vd_llm_tier_config {
  char provider[VD_LLM_NAME_MAX]; /* a provider's name */
  char model[VD_LLM_NAME_MAX];
  double usd_per_mtok_input; /* price per million input tokens */
  double usd_per_mtok_output;
  int max_output_tokens;
} vd_llm_tier_config;

typedef struct vd_llm_task_config {
  bool enabled;        /* false: every job runs the rules fallback ("task disabled") */
  bool allow_fallback; /* false: a job that cannot get an LLM answer ends "failed" */
  vd_llm_tier tier;
  char prompt_version[VD_LLM_NAME_MAX]; /* file stem under prompts_dir/<task>/, e.g. "v1" */
  int64_t deadline_ms;                  /* from submission to terminal state */
  double temperature;                   /* < 0: the provider's default */
} vd_llm_task_config;

typedef struct vd_llm_budget {
  char feature[VD_LLM_NAME_MAX]; /* the submitter's feature name ("itineraries", "triage" ...) */
  double daily_usd;              /* spend per UTC day after which new jobs go to the fallback */
} vd_llm_budget;

/* Called once per job after its terminal state is stored; job is the state JSON (borrowed). */
typedef void (*vd_llm_done_fn)(void *ctx, const json_t *job);

typedef struct vd_llm_config {
  char data_dir[VD_LLM_PATH_MAX];       /* llm.sqlite lives here (created if absent) */
  char prompts_dir[VD_LLM_PATH_MAX];    /* <task>/<version>.md */
  char catalogue_path[VD_LLM_PATH_MAX]; /* activity catalogue for the itinerary template */
  char gazetteer_path[VD_LLM_PATH_MAX]; /* the rules extractor's places ("" = none) */
  vd_llm_provider_config providers[VD_LLM_MAX_PROVIDERS];
  size_t provider_count;
  vd_llm_tier_config tiers[VD_LLM_TIER_COUNT];
  vd_llm_task_config tasks[VD_LLM_TASK_COUNT];
  vd_llm_budget budgets[VD_LLM_MAX_BUDGETS];
  size_t budget_count;
  size_t queue_capacity;   /* unfinished jobs held at once; beyond it submit says QUEUE_FULL */
  int max_in_flight;       /* provider requests running at once on the multi handle */
  int max_attempts;        /* provider calls per job for transient failures (>= 1) */
  int64_t backoff_base_ms; /* retry n waits a random time in [0, min(max, base * 2^(n-1))] */
  int64_t backoff_max_ms;  /* ... and never less than the provider's retry-after */
  int64_t connect_timeout_ms;
  int64_t first_token_timeout_ms; /* no answer text this long after the request: retry */
  int64_t idle_timeout_ms;        /* no bytes this long mid-stream: retry */
  int breaker_failures;           /* consecutive provider failures that open its breaker */
  int64_t breaker_cooldown_ms;    /* open this long, then one trial call (half-open) */
  int64_t cache_ttl_s;            /* 0 disables the cache */
  uint64_t jitter_seed;           /* 0: seeded from the clock */
  vd_llm_done_fn on_done;         /* may be NULL */
  void *on_done_ctx;
} vd_llm_config;

/* Shipped defaults: providers "anthropic" (ANTHROPIC_BASE_URL or https://api.anthropic.com,
 * key ANTHROPIC_API_KEY) and "openai" (OPENAI_BASE_URL or https://api.openai.com/v1, key
 * OPENAI_API_KEY); tiers on Anthropic (or on OpenAI when only OPENAI_API_KEY is set); data_dir
 * "data", prompts "examples/prompts", catalogue "examples/itineraries/catalogue.json", gazetteer
 * "examples/triage/gazetteer.tsv" (relative to the working directory). */
void vd_llm_config_defaults(vd_llm_config *cfg);

/* Overrides cfg from the config file's `llm:` section (jansson, e.g. from vd_yaml). Unknown keys
 * and wrong types are errors naming the field path ("llm.tiers.small.model: expected a string").
 * Keys: data_dir, prompts_dir, catalogue, gazetteer, queue_capacity, max_in_flight, max_attempts,
 * backoff_base_ms, backoff_max_ms, connect_timeout_ms, first_token_timeout_ms, idle_timeout_ms,
 * breaker_failures, breaker_cooldown_ms, cache_ttl_s,
 * providers: {NAME: {wire, base_url, api_key_env, key_optional}},
 * tiers: {small|large: {provider, model, usd_per_mtok_input, usd_per_mtok_output,
 * max_output_tokens}}, tasks: {extract|itinerary|classify: {enabled, allow_fallback, tier,
 * prompt_version, deadline_ms, temperature}}, budgets: {FEATURE: daily_usd}. */
bool vd_llm_config_from_json(vd_llm_config *cfg, const json_t *section, vd_error *err);

typedef struct vd_llm vd_llm;

vd_llm *vd_llm_open(const vd_llm_config *cfg, vd_error *err);
/* Stops the worker (in-flight calls are abandoned; their jobs stay "running" in the store and are
 * resumed by the next vd_llm_open) and frees everything. NULL is fine. */
void vd_llm_close(vd_llm *llm);

/* Reloads every task's prompt from the registry (the versions the data folder's history made
 * active) and swaps them in atomically: jobs planned from now on use them, running ones finish
 * with what they planned with. On error (err: file:line:col) the previous prompts keep serving.
 * versions (may be NULL) receives {task: prompt id}. Thread-safe; call it from the admin reload. */
bool vd_llm_reload_prompts(vd_llm *llm, json_t **versions, vd_error *err);

typedef enum vd_llm_submit_status {
  VD_LLM_SUBMITTED = 0,  /* queued: answer 202 {job_id} */
  VD_LLM_CACHED = 1,     /* answered from the cache: the job is already succeeded (200) */
  VD_LLM_QUEUE_FULL = 2, /* rejected, nothing stored: 429 */
  VD_LLM_REJECTED = 3,   /* invalid input (err.field says where) or store failure: 400/500 */
} vd_llm_submit_status;

typedef struct vd_llm_submit_opts {
  const char *feature; /* budget and ledger key; NULL = the task's name */
  const char *ref;     /* the caller's reference, e.g. the triage decision id (NULL = none) */
} vd_llm_submit_opts;

/* Never waits on the provider or on queue space: stores the job and returns. job_id is filled for
 * SUBMITTED and CACHED. For REJECTED, err.message says why (err.field names the input field). */
vd_llm_submit_status vd_llm_submit(vd_llm *llm, vd_llm_task task, const json_t *input,
                                   const vd_llm_submit_opts *opts, char job_id[VD_LLM_JOB_ID_SIZE],
                                   vd_error *err);

/* The job's state JSON, or NULL when no such job exists:
 * {job_id, task, feature, ref, state, reason, handled_by ("llm"|"rules"|"cache"|"template"),
 *  attempts, provider, model, prompt_version, input_tokens, output_tokens, cost_usd,
 *  ttft_ms, latency_ms, repaired, cache_hit, created_at, started_at, finished_at, result} */
json_t *vd_llm_job(vd_llm *llm, const char *job_id);

/* Blocks up to timeout_ms until the job is terminal. True when it is. */
bool vd_llm_wait(vd_llm *llm, const char *job_id, int64_t timeout_ms);

/* Events of a job after *cursor (start with 0), as a JSON array of
 *   {seq, event, data}: event "state" {state, attempt}, "token" {text}, "retry" {attempt, delay_ms,
 *   reason}, "reset" {} (discard the tokens streamed so far: a retry or repair restarts the
 *   answer), "done" {the job's state JSON}.
 * Waits up to timeout_ms when there is nothing new; advances *cursor past the returned events;
 * sets *finished once the "done" event has been returned. The 64 most recently finished jobs keep
 * their token events; older ones keep the others (seq numbers unchanged); a finished job no longer
 * in memory (512 are kept) yields a single "done" event from the store. NULL (err set) for an
 * unknown job. */
json_t *vd_llm_events(vd_llm *llm, const char *job_id, uint64_t *cursor, int64_t timeout_ms,
                      bool *finished, vd_error *err);

/* Formats one event for an SSE response: "id: SEQ\nevent: NAME\ndata: JSON\n\n". */
void vd_llm_event_sse(const json_t *event, vd_buf *out);

typedef struct vd_llm_stats {
  uint64_t submitted, rejected_queue_full, rejected_invalid;
  uint64_t succeeded, fallback, failed; /* terminal jobs since open */
  uint64_t provider_calls, provider_failures, retries, repairs;
  uint64_t cache_lookups, cache_hits;
  uint64_t budget_fallbacks, breaker_fallbacks;
  uint64_t breaker_trips;  /* times a provider's breaker opened from closed */
  uint64_t breaker_trials; /* half-open trial calls */
  int64_t input_tokens, output_tokens;
  double cost_usd;
  size_t queued, running;                  /* right now */
  bool breaker_open[VD_LLM_MAX_PROVIDERS]; /* by provider index in the config */
  uint64_t ttft_ms_sum, ttft_count;        /* for a mean time to first token */
} vd_llm_stats;

/* A snapshot of the counters (for /metrics). cache hit rate = cache_hits / cache_lookups. */
void vd_llm_get_stats(vd_llm *llm, vd_llm_stats *out);

/* Appends the counters in the Prometheus text format (verdict_llm_* metrics with HELP and TYPE
 * lines: jobs by outcome, provider calls, retries, repairs, cache lookups/hits/hit ratio,
 * tokens, cost, queue depth, breaker state per provider, mean TTFT), for GET /metrics. */
void vd_llm_metrics_text(vd_llm *llm, vd_buf *out);

/* Ledger totals per day, task and feature for days in [from_day, to_day] ("YYYY-MM-DD").
 * NULL on a store error. */
json_t *vd_llm_costs(vd_llm *llm, const char *from_day, const char *to_day, vd_error *err);

/* Spend in USD of a feature today (UTC), from the ledger. */
double vd_llm_spend_today(vd_llm *llm, const char *feature);

#endif
