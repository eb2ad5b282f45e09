/* The job service: a bounded queue of jobs, one worker thread driving one curl multi handle,
 * retries with backoff and jitter, a circuit breaker per provider, the cache and the cost ledger.
 */
#include "vd_llm.h"

#include <curl/curl.h>
#include <errno.h>
#include <gsl/gsl_rng.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "vd_hash.h"
#include "vd_llm_store.h"
#include "vd_llm_tasks.h"
#include "vd_prompts.h"
#include "vd_time.h"
#include "vd_uuid.h"

enum {
  RECENT_JOBS = 512,          /* finished jobs kept in memory for get/events */
  RECENT_WITH_TOKENS = 64,    /* ... of which the newest keep their token events */
  ERROR_BODY_MAX = 64 * 1024, /* how much of a non-200 body is kept for classification */
  POLL_MAX_MS = 100,          /* the worker re-checks timers at least this often */
};

/* A passive WAL checkpoint once a second. */
static const uint64_t CHECKPOINT_EVERY_NS = 1000000000;

typedef enum job_state { ST_QUEUED, ST_RUNNING, ST_SUCCEEDED, ST_FAILED, ST_FALLBACK } job_state;
static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "fallback"};

typedef struct breaker {
  int consecutive_failures;
  int64_t open_until_us; /* 0: closed */
  bool trial_in_flight;  /* half-open: one call is testing the provider */
} breaker;

typedef struct job job;

struct job {
  /* identity and record (read by any thread under llm->mu, written by the worker under it) */
  char id[VD_LLM_JOB_ID_SIZE];
  vd_llm_task task;
  char feature[VD_LLM_NAME_MAX];
  char ref[128];
  json_t *input;
  json_t *result;
  job_state state;
  char reason[512];
  char handled_by[16];
  int attempts;     /* provider calls made */
  int failed_calls; /* transient failures so far */
  bool repaired, cache_hit;
  char provider[VD_LLM_NAME_MAX];
  char model[VD_LLM_NAME_MAX];
  char prompt_version[VD_LLM_NAME_MAX + 16];
  char cache_key[VD_SHA256_HEX_SIZE];
  int64_t input_tokens, output_tokens;
  double cost_usd;
  int64_t ttft_ms, latency_ms;
  int64_t created_us, started_us, finished_us, deadline_us;
  int64_t not_before_us; /* a retry waits until then */
  json_t *events;        /* [{seq, event, data}] */
  uint64_t next_seq;
  /* worker-only state */
  bool in_flight;
  bool planned;
  vd_llm_plan plan;
  json_t *messages; /* the conversation sent (grows by one exchange on repair) */
  int provider_index;
  int budget_index;    /* the feature's budget in cfg.budgets, -1 for none */
  double reserved_usd; /* the worst-case cost of the call in flight, held against the budget */
  uint64_t run_start_ns;
  bool tokens_sent; /* tokens of the current attempt reached subscribers */
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  vd_sse_parser *sse;
  vd_llm_stream stream;
  vd_buf error_body;
  long http_status;
  char retry_after[64];
  char curl_error[CURL_ERROR_SIZE];
  uint64_t attempt_start_ns, last_byte_ns, first_token_ns;
  vd_llm *owner;
};

struct vd_llm {
  vd_llm_config cfg;
  vd_llm_store *store;        /* the one connection every job write goes through (writers queue on
                                 its mutex instead of sleeping in SQLite's busy handler) */
  vd_llm_store *front;        /* = store; named for the callers' side */
  vd_llm_store *reader;       /* reads for the callers' side (cache lookups on submit, job
                                 records, costs): in WAL mode a read neither waits for the
                                 worker's writes nor holds them up */
  vd_llm_store *checkpointer; /* folds the WAL back, from the worker, so no commit pays for it */
  uint64_t last_checkpoint_ns;
  vd_llm_tasks *_Atomic tasks; /* swapped whole by vd_llm_reload_prompts */
  vd_llm_tasks **retired;      /* replaced ones, freed at close: a job may still hold one */
  size_t retired_count;
  vd_uuid_gen *uuids;
  char *keys[VD_LLM_MAX_PROVIDERS]; /* API keys from the environment; NULL when unset */
  breaker breakers[VD_LLM_MAX_PROVIDERS];
  gsl_rng *rng;
  CURLM *multi;
  pthread_t worker;
  bool worker_started;
  pthread_mutex_t mu;
  pthread_cond_t changed; /* broadcast on every new event and terminal state */
  bool stop;
  job **live; /* unfinished jobs, oldest first */
  size_t live_count, live_capacity;
  job *recent[RECENT_JOBS]; /* finished jobs, a ring */
  size_t recent_next;
  int in_flight;
  size_t reserved; /* queue slots taken by submissions being stored */
  /* Worst-case cost of the calls in flight per budget (worker thread only): a call starts only
   * when today's spend plus these plus its own worst case stays within the budget. */
  double budget_reserved_usd[VD_LLM_MAX_BUDGETS];
  /* Today's spend per budget, from the ledger once a day and then kept up to date by every call
   * this process records (worker thread only): no growing SUM over the ledger per call. */
  double budget_spent_usd[VD_LLM_MAX_BUDGETS];
  char budget_day[16];
  vd_llm_stats stats;
};

/* ---- small helpers ---- */

/* The active prompt's header decides the task's tier (the config's applies without a prompt). */
static vd_llm_tier task_tier(const vd_llm *llm, vd_llm_task task) {
  const vd_prompt *prompt = vd_llm_tasks_prompt(((vd_llm *)llm)->tasks, task);
  return prompt ? vd_prompt_tier(prompt) : llm->cfg.tasks[task].tier;
}

static void today_utc(char out[16]) {
  time_t now = (time_t)(vd_wall_us() / 1000000);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(out, 16, "%Y-%m-%d", &tm);
}

static void copy(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

static bool mkdir_p(const char *path, vd_error *err) {
  char buf[VD_LLM_PATH_MAX];
  copy(buf, sizeof buf, path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return vd_error_set(err, "%s: cannot create: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return vd_error_set(err, "%s: cannot create: %s", buf, strerror(errno));
  return true;
}

static int provider_for_tier(const vd_llm *llm, vd_llm_tier tier) {
  for (size_t i = 0; i < llm->cfg.provider_count; i++)
    if (strcmp(llm->cfg.providers[i].name, llm->cfg.tiers[tier].provider) == 0) return (int)i;
  return -1;
}

static int budget_for(const vd_llm *llm, const char *feature) {
  for (size_t i = 0; i < llm->cfg.budget_count; i++)
    if (strcmp(llm->cfg.budgets[i].feature, feature) == 0) return (int)i;
  return -1;
}

static void rfc3339_or_null(json_t *obj, const char *key, int64_t us) {
  if (!us) {
    json_object_set_new(obj, key, json_null());
    return;
  }
  char buf[40];
  vd_format_rfc3339_us(us, buf, sizeof buf);
  json_object_set_new(obj, key, json_string(buf));
}

static json_t *int_or_null(int64_t v) { return v < 0 ? json_null() : json_integer(v); }

/* The job's public state JSON. Caller holds llm->mu. */
static json_t *job_json(const job *j) {
  json_t *o = json_object();
  json_object_set_new(o, "job_id", json_string(j->id));
  json_object_set_new(o, "task", json_string(vd_llm_task_name(j->task)));
  json_object_set_new(o, "feature", json_string(j->feature));
  json_object_set_new(o, "ref", j->ref[0] ? json_string(j->ref) : json_null());
  json_object_set_new(o, "state", json_string(state_names[j->state]));
  json_object_set_new(o, "reason", j->reason[0] ? json_string(j->reason) : json_null());
  json_object_set_new(o, "handled_by", j->handled_by[0] ? json_string(j->handled_by) : json_null());
  json_object_set_new(o, "attempts", json_integer(j->attempts));
  json_object_set_new(o, "provider", j->provider[0] ? json_string(j->provider) : json_null());
  json_object_set_new(o, "model", j->model[0] ? json_string(j->model) : json_null());
  json_object_set_new(o, "prompt_version", json_string(j->prompt_version));
  json_object_set_new(o, "input_tokens", json_integer(j->input_tokens));
  json_object_set_new(o, "output_tokens", json_integer(j->output_tokens));
  json_object_set_new(o, "cost_usd", json_real(j->cost_usd));
  json_object_set_new(o, "ttft_ms", int_or_null(j->ttft_ms));
  json_object_set_new(o, "latency_ms", int_or_null(j->latency_ms));
  json_object_set_new(o, "repaired", json_boolean(j->repaired));
  json_object_set_new(o, "cache_hit", json_boolean(j->cache_hit));
  rfc3339_or_null(o, "created_at", j->created_us);
  rfc3339_or_null(o, "started_at", j->started_us);
  rfc3339_or_null(o, "finished_at", j->finished_us);
  json_object_set_new(o, "result", j->result ? json_deep_copy(j->result) : json_null());
  return o;
}

/* The stored record: the state JSON plus what a restart needs. Caller holds llm->mu. */
static json_t *job_record(const job *j) {
  json_t *o = job_json(j);
  json_object_set_new(o, "input", json_deep_copy(j->input));
  json_object_set_new(o, "created_us", json_integer(j->created_us));
  json_object_set_new(o, "started_us", json_integer(j->started_us));
  json_object_set_new(o, "finished_us", json_integer(j->finished_us));
  json_object_set_new(o, "deadline_us", json_integer(j->deadline_us));
  json_object_set_new(o, "failed_calls", json_integer(j->failed_calls));
  json_object_set_new(o, "cache_key", json_string(j->cache_key));
  return o;
}

/* Stores the job's record through store: llm->store on the worker, llm->front elsewhere. */
static void persist(vd_llm *llm, job *j, vd_llm_store *store) {
  pthread_mutex_lock(&llm->mu);
  json_t *record = job_record(j);
  pthread_mutex_unlock(&llm->mu);
  vd_error err;
  if (!vd_llm_store_put_job(store, record, &err))
    fprintf(stderr, "verdict llm: job %s not persisted: %s\n", j->id, err.message);
  json_decref(record);
}

/* Appends an event. Caller holds llm->mu. */
static void push_event(vd_llm *llm, job *j, const char *name, json_t *data) {
  json_array_append_new(j->events, json_pack("{s:I,s:s,s:o}", "seq", (json_int_t)++j->next_seq,
                                             "event", name, "data", data));
  pthread_cond_broadcast(&llm->changed);
}

static job *job_new(vd_llm *llm) {
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->events = json_array();
  j->ttft_ms = -1;
  j->latency_ms = -1;
  j->provider_index = -1;
  j->budget_index = -1;
  j->owner = llm;
  return j;
}

static void attempt_cleanup(job *j) {
  if (j->easy) curl_easy_cleanup(j->easy);
  j->easy = NULL;
  curl_slist_free_all(j->headers);
  j->headers = NULL;
  free(j->body);
  j->body = NULL;
  vd_sse_parser_free(j->sse);
  j->sse = NULL;
  vd_llm_stream_free(&j->stream);
  vd_buf_free(&j->error_body);
}

static void job_free(job *j) {
  if (!j) return;
  attempt_cleanup(j);
  json_decref(j->input);
  json_decref(j->result);
  json_decref(j->events);
  json_decref(j->messages);
  vd_llm_plan_free(&j->plan);
  free(j);
}

/* Caller holds llm->mu. */
static job *find_job(vd_llm *llm, const char *id) {
  for (size_t i = 0; i < llm->live_count; i++)
    if (strcmp(llm->live[i]->id, id) == 0) return llm->live[i];
  for (size_t i = 0; i < RECENT_JOBS; i++)
    if (llm->recent[i] && strcmp(llm->recent[i]->id, id) == 0) return llm->recent[i];
  return NULL;
}

/* Caller holds llm->mu. */
static bool add_live(vd_llm *llm, job *j) {
  if (llm->live_count == llm->live_capacity) {
    size_t capacity = llm->live_capacity ? llm->live_capacity * 2 : 64;
    job **grown = realloc(llm->live, capacity * sizeof(job *));
    if (!grown) return false;
    llm->live = grown;
    llm->live_capacity = capacity;
  }
  llm->live[llm->live_count++] = j;
  return true;
}

/* Moves a job from live (when it is there) to the recent ring. Caller holds llm->mu. */
static void retire(vd_llm *llm, job *j) {
  for (size_t i = 0; i < llm->live_count; i++)
    if (llm->live[i] == j) {
      memmove(&llm->live[i], &llm->live[i + 1], (llm->live_count - i - 1) * sizeof(job *));
      llm->live_count--;
      break;
    }
  job_free(llm->recent[llm->recent_next]);
  llm->recent[llm->recent_next] = j;
  llm->recent_next = (llm->recent_next + 1) % RECENT_JOBS;
  /* Older finished jobs drop their token events (the "done" event has the whole result); seq
   * numbers stay, so a cursor still works. This bounds memory to the newest jobs' streams. */
  job *old = llm->recent[(llm->recent_next + RECENT_JOBS - RECENT_WITH_TOKENS - 1) % RECENT_JOBS];
  if (old) {
    json_t *kept = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(old->events, i, e) {
      if (strcmp(json_string_value(json_object_get(e, "event")), "token") != 0)
        json_array_append(kept, e);
    }
    json_decref(old->events);
    old->events = kept;
  }
}

/* ---- terminal states ---- */

static void finish(vd_llm *llm, job *j, job_state state, const char *handled_by, json_t *result,
                   const char *reason, vd_llm_store *store) {
  pthread_mutex_lock(&llm->mu);
  j->state = state;
  copy(j->handled_by, sizeof j->handled_by, handled_by);
  if (reason) copy(j->reason, sizeof j->reason, reason);
  json_decref(j->result);
  j->result = result;
  j->finished_us = vd_wall_us();
  if (j->run_start_ns) j->latency_ms = (int64_t)((vd_monotonic_ns() - j->run_start_ns) / 1000000);
  if (state == ST_SUCCEEDED) llm->stats.succeeded++;
  if (state == ST_FALLBACK) llm->stats.fallback++;
  if (state == ST_FAILED) llm->stats.failed++;
  push_event(llm, j, "done", job_json(j));
  json_t *snapshot = job_json(j);
  retire(llm, j);
  pthread_mutex_unlock(&llm->mu);
  persist(llm, j, store);
  if (llm->cfg.on_done) llm->cfg.on_done(llm->cfg.on_done_ctx, snapshot);
  json_decref(snapshot);
}

/* The task's rules answer, or "failed" when the task may not fall back or the fallback fails. */
static void fall_back(vd_llm *llm, job *j, const char *why) {
  if (!llm->cfg.tasks[j->task].allow_fallback) {
    finish(llm, j, ST_FAILED, "none", NULL, why, llm->store);
    return;
  }
  vd_error err;
  json_t *result =
      vd_llm_tasks_fallback(llm->tasks, j->task, j->input, j->planned ? &j->plan : NULL, &err);
  if (!result) {
    char reason[600];
    snprintf(reason, sizeof reason, "%s; the fallback failed too: %s", why, err.message);
    finish(llm, j, ST_FAILED, "none", NULL, reason, llm->store);
    return;
  }
  finish(llm, j, ST_FALLBACK, vd_llm_tasks_fallback_kind(j->task), result, why, llm->store);
}

/* ---- provider calls ---- */

static void on_token(void *ctx, const char *text, size_t len) {
  job *j = ctx;
  vd_llm *llm = j->owner;
  pthread_mutex_lock(&llm->mu);
  if (!j->first_token_ns) {
    j->first_token_ns = vd_monotonic_ns();
    j->ttft_ms = (int64_t)((j->first_token_ns - j->attempt_start_ns) / 1000000);
    llm->stats.ttft_ms_sum += (uint64_t)j->ttft_ms;
    llm->stats.ttft_count++;
  }
  j->tokens_sent = true;
  push_event(llm, j, "token", json_pack("{s:s%}", "text", text, len));
  pthread_mutex_unlock(&llm->mu);
}

static bool on_sse(void *ctx, const vd_sse_event *event) {
  job *j = ctx;
  return vd_llm_stream_event(&j->stream, event);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
  job *j = ctx;
  size_t len = size * n;
  j->last_byte_ns = vd_monotonic_ns();
  if (!j->http_status) curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->http_status);
  if (j->http_status != 200) {
    if (j->error_body.len + len <= ERROR_BODY_MAX) vd_buf_append(&j->error_body, data, len);
    return len;
  }
  if (!vd_sse_feed(j->sse, data, len, NULL)) {
    if (!j->stream.failed) {
      j->stream.failed = true;
      j->stream.error_retryable = true;
      copy(j->stream.error_type, sizeof j->stream.error_type, "protocol_error");
      copy(j->stream.error_message, sizeof j->stream.error_message,
           "the event stream could not be parsed");
    }
    return 0; /* aborts the transfer: the answer is unusable */
  }
  return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx) {
  job *j = ctx;
  size_t len = size * n;
  j->last_byte_ns = vd_monotonic_ns();
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    j->retry_after[0] = '\0'; /* a new response (after a 100 Continue, say) */
    j->http_status = 0;
  } else if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
    size_t v = len - 12;
    const char *value = data + 12;
    while (v && (value[v - 1] == '\r' || value[v - 1] == '\n')) v--;
    snprintf(j->retry_after, sizeof j->retry_after, "%.*s", (int)v, value);
  }
  return len;
}

/* The next call's request body (into j->body) and the most that call can cost: every byte of the
 * body an input token (tokenizers map each token to at least one byte) and max_tokens of output
 * (the provider stops there). */
static bool build_body(vd_llm *llm, job *j, double *worst_usd) {
  const vd_llm_provider_config *pc = &llm->cfg.providers[j->provider_index];
  const vd_llm_tier_config *tier = &llm->cfg.tiers[task_tier(llm, j->task)];
  const vd_prompt *prompt = vd_llm_tasks_prompt(llm->tasks, j->task);
  int max_tokens = prompt ? vd_prompt_max_tokens(prompt) : tier->max_output_tokens;
  json_t *body = vd_llm_request_body(
      pc->wire, tier->model, j->plan.system, j->messages, max_tokens,
      prompt ? vd_prompt_temperature(prompt) : llm->cfg.tasks[j->task].temperature);
  free(j->body);
  j->body = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (!j->body) return false;
  *worst_usd = ((double)strlen(j->body) * tier->usd_per_mtok_input +
                (double)max_tokens * tier->usd_per_mtok_output) /
               1e6;
  return true;
}

/* Holds the call's worst-case cost against its feature's budget, or says why it may not start:
 * with what today's ledger has and what the calls in flight may still cost, a budget is never
 * exceeded (not even by calls that started before it ran out). Worker thread only. */
static bool reserve_budget(vd_llm *llm, job *j, double worst_usd, char *reason, size_t size) {
  j->budget_index = budget_for(llm, j->feature);
  if (j->budget_index < 0) return true;
  const vd_llm_budget *b = &llm->cfg.budgets[j->budget_index];
  char today[16];
  today_utc(today);
  if (strcmp(today, llm->budget_day) != 0) {
    for (size_t i = 0; i < llm->cfg.budget_count; i++)
      llm->budget_spent_usd[i] = vd_llm_store_spend(llm->store, llm->cfg.budgets[i].feature, today);
    copy(llm->budget_day, sizeof llm->budget_day, today);
  }
  double spent = llm->budget_spent_usd[j->budget_index];
  double held = llm->budget_reserved_usd[j->budget_index];
  if (spent + held + worst_usd <= b->daily_usd) {
    llm->budget_reserved_usd[j->budget_index] += worst_usd;
    j->reserved_usd = worst_usd;
    return true;
  }
  snprintf(reason, size,
           "daily LLM budget of feature %s spent: $%.4f of $%.4f on %s (calls in flight hold "
           "$%.4f; this call could cost up to $%.4f)",
           j->feature, spent, b->daily_usd, today, held, worst_usd);
  return false;
}

static void release_budget(vd_llm *llm, job *j) {
  if (j->budget_index >= 0) {
    double *held = &llm->budget_reserved_usd[j->budget_index];
    *held -= j->reserved_usd;
    if (*held < 1e-12) *held = 0; /* no drift from the sums */
  }
  j->reserved_usd = 0;
}

static bool start_call(vd_llm *llm, job *j, vd_error *err) {
  const vd_llm_provider_config *pc = &llm->cfg.providers[j->provider_index];
  const vd_llm_tier_config *tier = &llm->cfg.tiers[task_tier(llm, j->task)];
  char url[VD_LLM_PATH_MAX + 64];
  if (!vd_llm_endpoint_url(pc->wire, pc->base_url, url, sizeof url))
    return vd_error_set(err, "provider %s: base URL too long", pc->name);
  j->easy = curl_easy_init();
  j->sse = vd_sse_parser_new(on_sse, j, 0);
  if (!j->body || !j->easy || !j->sse) return vd_error_set(err, "out of memory");
  memset(&j->stream, 0, sizeof j->stream);
  j->stream.wire = pc->wire;
  j->stream.on_token = on_token;
  j->stream.token_ctx = j;
  j->http_status = 0;
  j->retry_after[0] = '\0';
  j->curl_error[0] = '\0';
  j->first_token_ns = 0;
  j->tokens_sent = false;
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: text/event-stream");
  h = curl_slist_append(h, "Expect:");
  const char *key = llm->keys[j->provider_index];
  vd_buf header = {0};
  if (pc->wire == VD_LLM_WIRE_ANTHROPIC) {
    h = curl_slist_append(h, "anthropic-version: 2023-06-01");
    if (key) vd_buf_printf(&header, "x-api-key: %s", key);
  } else if (key) {
    vd_buf_printf(&header, "Authorization: Bearer %s", key);
  }
  if (header.data) h = curl_slist_append(h, header.data);
  if (header.data) memset(header.data, 0, header.len); /* the key does not linger in our heap */
  vd_buf_free(&header);
  j->headers = h;
  CURL *e = j->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
  curl_easy_setopt(e, CURLOPT_PRIVATE, j);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->curl_error);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)llm->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "verdict-llm/0.1");
  int64_t left_ms = (j->deadline_us - vd_wall_us()) / 1000;
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left_ms > 1 ? left_ms : 1));
  j->attempt_start_ns = j->last_byte_ns = vd_monotonic_ns();
  if (curl_multi_add_handle(llm->multi, e) != CURLM_OK)
    return vd_error_set(err, "cannot start the provider call");
  pthread_mutex_lock(&llm->mu);
  j->attempts++;
  j->in_flight = true;
  llm->in_flight++;
  llm->stats.provider_calls++;
  copy(j->provider, sizeof j->provider, pc->name);
  copy(j->model, sizeof j->model, tier->model);
  push_event(llm, j, "state", json_pack("{s:s,s:i}", "state", "running", "attempt", j->attempts));
  pthread_mutex_unlock(&llm->mu);
  return true;
}

/* Runs the checks that may settle a job without a call, then starts one. */
static void begin(vd_llm *llm, job *j) {
  vd_error err;
  if (j->state == ST_QUEUED) {
    pthread_mutex_lock(&llm->mu);
    j->state = ST_RUNNING;
    if (!j->started_us) j->started_us = vd_wall_us();
    j->run_start_ns = vd_monotonic_ns();
    push_event(llm, j, "state", json_pack("{s:s,s:i}", "state", "running", "attempt", j->attempts));
    pthread_mutex_unlock(&llm->mu);
    persist(llm, j, llm->store);
  }
  char reason[600];
  if (vd_wall_us() >= j->deadline_us) {
    snprintf(reason, sizeof reason, "deadline of %lld ms passed before the provider answered",
             (long long)llm->cfg.tasks[j->task].deadline_ms);
    fall_back(llm, j, reason);
    return;
  }
  if (!j->planned) {
    if (!vd_llm_tasks_plan(llm->tasks, j->task, j->input, &j->plan, &err)) {
      fall_back(llm, j, err.message);
      return;
    }
    j->planned = true;
    j->messages = json_deep_copy(j->plan.messages);
    pthread_mutex_lock(&llm->mu); /* a resumed job records the prompt it now runs with */
    copy(j->prompt_version, sizeof j->prompt_version,
         vd_llm_tasks_prompt_version(llm->tasks, j->task));
    pthread_mutex_unlock(&llm->mu);
  }
  if (!j->plan.need_llm) {
    json_t *result = json_deep_copy(j->plan.partial);
    json_object_set_new(result, "source", json_string("rules"));
    finish(llm, j, ST_SUCCEEDED, "rules", result, NULL, llm->store);
    return;
  }
  if (!llm->cfg.tasks[j->task].enabled) {
    fall_back(llm, j, "the task's LLM calls are disabled in the config");
    return;
  }
  int p = provider_for_tier(llm, task_tier(llm, j->task));
  j->provider_index = p;
  const vd_llm_provider_config *pc = &llm->cfg.providers[p];
  if (!llm->keys[p] && !pc->key_optional) {
    snprintf(reason, sizeof reason, "no API key for provider %s: %s is not set", pc->name,
             pc->api_key_env[0] ? pc->api_key_env : "(no api_key_env configured)");
    fall_back(llm, j, reason);
    return;
  }
  double worst_usd = 0;
  if (!build_body(llm, j, &worst_usd)) {
    fall_back(llm, j, "out of memory building the request");
    return;
  }
  /* Every call, retries and repairs included, must fit in the budget. */
  if (!reserve_budget(llm, j, worst_usd, reason, sizeof reason)) {
    pthread_mutex_lock(&llm->mu);
    llm->stats.budget_fallbacks++;
    pthread_mutex_unlock(&llm->mu);
    fall_back(llm, j, reason);
    return;
  }
  breaker *br = &llm->breakers[p];
  int64_t now = vd_wall_us();
  if (br->open_until_us && (now < br->open_until_us || br->trial_in_flight)) {
    snprintf(reason, sizeof reason,
             "circuit breaker open for provider %s after %d consecutive failures", pc->name,
             br->consecutive_failures);
    pthread_mutex_lock(&llm->mu);
    llm->stats.breaker_fallbacks++;
    pthread_mutex_unlock(&llm->mu);
    release_budget(llm, j);
    fall_back(llm, j, reason);
    return;
  }
  pthread_mutex_lock(&llm->mu);
  if (br->open_until_us) { /* half-open: this call is the trial */
    br->trial_in_flight = true;
    llm->stats.breaker_trials++;
  }
  pthread_mutex_unlock(&llm->mu);
  if (start_call(llm, j, &err)) {
    persist(llm, j, llm->store); /* the attempt count survives a restart */
  } else {
    attempt_cleanup(j);
    release_budget(llm, j);
    pthread_mutex_lock(&llm->mu);
    br->trial_in_flight = false;
    pthread_mutex_unlock(&llm->mu);
    fall_back(llm, j, err.message);
  }
}

static void breaker_result(vd_llm *llm, int p, bool ok) {
  breaker *br = &llm->breakers[p];
  pthread_mutex_lock(&llm->mu);
  br->trial_in_flight = false;
  if (ok) {
    br->consecutive_failures = 0;
    br->open_until_us = 0;
  } else if (++br->consecutive_failures >= llm->cfg.breaker_failures || br->open_until_us) {
    if (!br->open_until_us) llm->stats.breaker_trips++; /* closed → open */
    br->open_until_us = vd_wall_us() + llm->cfg.breaker_cooldown_ms * 1000;
  }
  llm->stats.breaker_open[p] = br->open_until_us != 0;
  pthread_mutex_unlock(&llm->mu);
}

static void record_cost(vd_llm *llm, job *j, const char *outcome) {
  const vd_llm_tier_config *tier = &llm->cfg.tiers[task_tier(llm, j->task)];
  int64_t in = j->stream.input_tokens, out = j->stream.output_tokens;
  double cost =
      ((double)in * tier->usd_per_mtok_input + (double)out * tier->usd_per_mtok_output) / 1e6;
  char today[16];
  today_utc(today);
  vd_llm_ledger_row row = {.at_us = vd_wall_us(),
                           .day = today,
                           .job_id = j->id,
                           .task = vd_llm_task_name(j->task),
                           .feature = j->feature,
                           .provider = j->provider,
                           .model = j->model,
                           .attempt = j->attempts,
                           .input_tokens = in,
                           .output_tokens = out,
                           .cost_usd = cost,
                           .outcome = outcome};
  vd_error err;
  if (!vd_llm_store_ledger_add(llm->store, &row, &err))
    fprintf(stderr, "verdict llm: cost of job %s not recorded: %s\n", j->id, err.message);
  int b = budget_for(llm, j->feature);
  if (b >= 0 && strcmp(today, llm->budget_day) == 0) llm->budget_spent_usd[b] += cost;
  pthread_mutex_lock(&llm->mu);
  j->input_tokens += in;
  j->output_tokens += out;
  j->cost_usd += cost;
  llm->stats.input_tokens += in;
  llm->stats.output_tokens += out;
  llm->stats.cost_usd += cost;
  pthread_mutex_unlock(&llm->mu);
}

static int64_t backoff_ms(vd_llm *llm, int failures, int64_t retry_after_ms) {
  int64_t cap = llm->cfg.backoff_base_ms;
  for (int i = 1; i < failures && cap < llm->cfg.backoff_max_ms; i++) cap *= 2;
  if (cap > llm->cfg.backoff_max_ms) cap = llm->cfg.backoff_max_ms;
  /* "Equal jitter": half fixed, half random, so retries spread out but never collapse to zero. */
  int64_t fixed = cap / 2;
  int64_t delay = fixed + (int64_t)(gsl_rng_uniform(llm->rng) * (double)(cap - fixed));
  return retry_after_ms > delay ? retry_after_ms : delay;
}

static void after_failure(vd_llm *llm, job *j, const vd_llm_failure *f) {
  /* Evidence against the provider: transient and transport errors, and a call the job's deadline
   * cut short (a provider too slow to finish in time is not healthy, even while its bytes trickle
   * in: otherwise a slow-drip trial call would close an open breaker). A 4xx is not. */
  bool provider_trouble = f->retryable || f->http_status == 0 || strcmp(f->kind, "deadline") == 0;
  breaker_result(llm, j->provider_index, !provider_trouble);
  pthread_mutex_lock(&llm->mu);
  llm->stats.provider_failures++;
  j->failed_calls++;
  pthread_mutex_unlock(&llm->mu);
  char reason[600];
  if (!f->retryable) {
    snprintf(reason, sizeof reason, "provider %s: %s (%s), not retried", j->provider, f->message,
             f->kind);
    fall_back(llm, j, reason);
    return;
  }
  if (j->failed_calls >= llm->cfg.max_attempts) {
    snprintf(reason, sizeof reason, "provider %s: %s (%s) after %d attempts", j->provider,
             f->message, f->kind, j->attempts);
    fall_back(llm, j, reason);
    return;
  }
  int64_t delay = backoff_ms(llm, j->failed_calls, f->retry_after_ms);
  int64_t now = vd_wall_us();
  if (now + delay * 1000 >= j->deadline_us) {
    snprintf(reason, sizeof reason,
             "provider %s: %s (%s); the next retry (in %lld ms) would pass the deadline",
             j->provider, f->message, f->kind, (long long)delay);
    fall_back(llm, j, reason);
    return;
  }
  pthread_mutex_lock(&llm->mu);
  llm->stats.retries++;
  j->not_before_us = now + delay * 1000;
  if (j->tokens_sent) push_event(llm, j, "reset", json_object());
  push_event(llm, j, "retry",
             json_pack("{s:i,s:I,s:s,s:s}", "attempt", j->attempts + 1, "delay_ms",
                       (json_int_t)delay, "reason", f->kind, "message", f->message));
  pthread_mutex_unlock(&llm->mu);
  persist(llm, j, llm->store);
}

static void after_answer(vd_llm *llm, job *j) {
  breaker_result(llm, j->provider_index, true);
  vd_buf problems = {0};
  json_t *result = vd_llm_tasks_accept(llm->tasks, j->task, j->input, &j->plan,
                                       j->stream.text.data ? j->stream.text.data : "", &problems);
  if (result) {
    if (llm->cfg.cache_ttl_s > 0 && j->cache_key[0]) {
      int64_t now = vd_wall_us();
      vd_error err;
      if (!vd_llm_store_cache_put(llm->store, j->cache_key, vd_llm_task_name(j->task), result, now,
                                  now + llm->cfg.cache_ttl_s * 1000000, &err))
        fprintf(stderr, "verdict llm: result of job %s not cached: %s\n", j->id, err.message);
    }
    vd_buf_free(&problems);
    finish(llm, j, ST_SUCCEEDED, "llm", result, NULL, llm->store);
    return;
  }
  const char *why = problems.data ? problems.data : "unusable answer";
  if (!j->repaired) {
    /* One repair: show the model its answer and what is wrong with it. */
    char *repair = vd_llm_tasks_repair_prompt(why);
    pthread_mutex_lock(&llm->mu);
    j->repaired = true;
    llm->stats.repairs++;
    json_array_append_new(j->messages, json_pack("{s:s,s:s}", "role", "assistant", "content",
                                                 j->stream.text.data ? j->stream.text.data : ""));
    json_array_append_new(j->messages, json_pack("{s:s,s:s}", "role", "user", "content", repair));
    j->not_before_us = 0;
    push_event(llm, j, "reset", json_object());
    pthread_mutex_unlock(&llm->mu);
    free(repair);
    vd_buf_free(&problems);
    return;
  }
  char reason[600];
  snprintf(reason, sizeof reason, "the answer failed validation after one repair: %s", why);
  vd_buf_free(&problems);
  fall_back(llm, j, reason);
}

/* Ends the job's current call: its outcome decides retry, repair, success or fallback. */
static void end_call(vd_llm *llm, job *j, CURLcode rc, const vd_llm_failure *forced) {
  curl_multi_remove_handle(llm->multi, j->easy);
  if (!j->http_status) curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->http_status);
  pthread_mutex_lock(&llm->mu);
  j->in_flight = false;
  llm->in_flight--;
  pthread_mutex_unlock(&llm->mu);
  vd_llm_failure f = {.retry_after_ms = -1};
  bool failed = true;
  if (forced) {
    f = *forced;
  } else if (j->stream.failed) {
    f.retryable = j->stream.error_retryable;
    f.http_status = (int)j->http_status;
    copy(f.kind, sizeof f.kind, j->stream.error_type);
    snprintf(f.message, sizeof f.message, "error in the stream: %.200s", j->stream.error_message);
  } else if (rc != CURLE_OK) {
    f.retryable = true;
    copy(f.kind, sizeof f.kind, "connection");
    snprintf(f.message, sizeof f.message, "%.60s%s%.180s", curl_easy_strerror(rc),
             j->curl_error[0] ? ": " : "", j->curl_error);
  } else if (j->http_status != 200) {
    f = vd_llm_classify_http((int)j->http_status, j->error_body.data,
                             j->retry_after[0] ? j->retry_after : NULL, vd_wall_us() / 1000000);
  } else if (!j->stream.complete) {
    f.retryable = true;
    f.http_status = 200;
    copy(f.kind, sizeof f.kind, "incomplete_stream");
    snprintf(f.message, sizeof f.message, "the stream ended without %s",
             j->stream.wire == VD_LLM_WIRE_OPENAI ? "[DONE]" : "message_stop");
  } else {
    failed = false;
  }
  if (j->stream.usage_seen || !failed) record_cost(llm, j, failed ? f.kind : "ok");
  release_budget(llm, j); /* after the ledger has the call's real cost */
  if (failed)
    after_failure(llm, j, &f);
  else
    after_answer(llm, j);
  attempt_cleanup(j); /* the next call, if any, builds its own */
}

/* Calls that ran out of time: the job's deadline, the first-token or the idle timeout. */
static void check_timeouts(vd_llm *llm) {
  uint64_t now_ns = vd_monotonic_ns();
  int64_t now_us = vd_wall_us();
  for (;;) {
    job *expired = NULL;
    vd_llm_failure f = {.retry_after_ms = -1, .retryable = true};
    pthread_mutex_lock(&llm->mu);
    for (size_t i = 0; i < llm->live_count && !expired; i++) {
      job *j = llm->live[i];
      if (!j->in_flight) continue;
      if (now_us >= j->deadline_us) {
        f.retryable = false;
        copy(f.kind, sizeof f.kind, "deadline");
        snprintf(f.message, sizeof f.message, "the job's deadline of %lld ms passed mid-call",
                 (long long)llm->cfg.tasks[j->task].deadline_ms);
      } else if (!j->first_token_ns && now_ns - j->attempt_start_ns >
                                           (uint64_t)llm->cfg.first_token_timeout_ms * 1000000) {
        copy(f.kind, sizeof f.kind, "first_token_timeout");
        snprintf(f.message, sizeof f.message, "no answer text within %lld ms",
                 (long long)llm->cfg.first_token_timeout_ms);
      } else if (now_ns - j->last_byte_ns > (uint64_t)llm->cfg.idle_timeout_ms * 1000000) {
        copy(f.kind, sizeof f.kind, "idle_timeout");
        snprintf(f.message, sizeof f.message, "the stream stalled for %lld ms",
                 (long long)llm->cfg.idle_timeout_ms);
      } else {
        continue;
      }
      expired = j;
    }
    pthread_mutex_unlock(&llm->mu);
    if (!expired) return;
    end_call(llm, expired, CURLE_OK, &f);
  }
}

/* When the call in flight runs out of time (wall clock, µs): its job's deadline, or its first-token
 * or idle timeout. The worker wakes then, so a timeout fires when configured, however short.
 * Caller holds llm->mu. */
static int64_t call_expiry_us(const vd_llm *llm, const job *j, int64_t now_us, uint64_t now_ns) {
  int64_t at = j->deadline_us;
  int64_t idle_left_us =
      ((int64_t)j->last_byte_ns + llm->cfg.idle_timeout_ms * 1000000 - (int64_t)now_ns) / 1000;
  if (now_us + idle_left_us < at) at = now_us + idle_left_us;
  if (!j->first_token_ns) {
    int64_t first_left_us = ((int64_t)j->attempt_start_ns +
                             llm->cfg.first_token_timeout_ms * 1000000 - (int64_t)now_ns) /
                            1000;
    if (now_us + first_left_us < at) at = now_us + first_left_us;
  }
  return at;
}

static void *worker_main(void *arg) {
  vd_llm *llm = arg;
  job **due = NULL;
  size_t due_capacity = 0;
  for (;;) {
    pthread_mutex_lock(&llm->mu);
    if (llm->stop) {
      pthread_mutex_unlock(&llm->mu);
      break;
    }
    int64_t now = vd_wall_us();
    size_t due_count = 0;
    int64_t next_wake_us = now + POLL_MAX_MS * 1000;
    if (due_capacity < llm->live_count) {
      job **grown = realloc(due, llm->live_count * sizeof(job *));
      if (grown) due = grown, due_capacity = llm->live_count;
    }
    int slots = llm->cfg.max_in_flight - llm->in_flight;
    uint64_t now_ns = vd_monotonic_ns();
    for (size_t i = 0; i < llm->live_count && due_count < due_capacity; i++) {
      job *j = llm->live[i];
      if (j->in_flight) {
        int64_t expiry = call_expiry_us(llm, j, now, now_ns);
        if (expiry < next_wake_us) next_wake_us = expiry;
        continue;
      }
      if (j->not_before_us > now) {
        if (j->not_before_us < next_wake_us) next_wake_us = j->not_before_us;
        continue;
      }
      bool expired = now >= j->deadline_us; /* settles at once, slot or not */
      if (slots <= 0 && !expired) continue;
      due[due_count++] = j;
      if (!expired) slots--;
    }
    pthread_mutex_unlock(&llm->mu);
    for (size_t i = 0; i < due_count; i++) begin(llm, due[i]);
    int running = 0;
    curl_multi_perform(llm->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(llm->multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      job *j = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
      end_call(llm, j, msg->data.result, NULL);
    }
    check_timeouts(llm);
    if (vd_monotonic_ns() - llm->last_checkpoint_ns > CHECKPOINT_EVERY_NS) {
      vd_llm_store_checkpoint(llm->checkpointer);
      llm->last_checkpoint_ns = vd_monotonic_ns();
    }
    int64_t wait_ms = (next_wake_us - vd_wall_us()) / 1000;
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > POLL_MAX_MS) wait_ms = POLL_MAX_MS;
    if (due_count == 0) curl_multi_poll(llm->multi, NULL, 0, (int)wait_ms, NULL);
  }
  free(due);
  return NULL;
}

/* ---- open / close ---- */

static job *job_from_record(vd_llm *llm, const json_t *r) {
  job *j = job_new(llm);
  if (!j) return NULL;
  copy(j->id, sizeof j->id, json_string_value(json_object_get(r, "job_id")));
  if (!vd_llm_task_parse(json_string_value(json_object_get(r, "task"))
                             ? json_string_value(json_object_get(r, "task"))
                             : "",
                         &j->task)) {
    job_free(j);
    return NULL;
  }
  copy(j->feature, sizeof j->feature, json_string_value(json_object_get(r, "feature")));
  copy(j->ref, sizeof j->ref, json_string_value(json_object_get(r, "ref")));
  copy(j->prompt_version, sizeof j->prompt_version,
       json_string_value(json_object_get(r, "prompt_version")));
  copy(j->cache_key, sizeof j->cache_key, json_string_value(json_object_get(r, "cache_key")));
  j->input = json_deep_copy(json_object_get(r, "input"));
  j->attempts = (int)json_integer_value(json_object_get(r, "attempts"));
  j->failed_calls = (int)json_integer_value(json_object_get(r, "failed_calls"));
  j->input_tokens = json_integer_value(json_object_get(r, "input_tokens"));
  j->output_tokens = json_integer_value(json_object_get(r, "output_tokens"));
  j->cost_usd = json_number_value(json_object_get(r, "cost_usd"));
  j->created_us = json_integer_value(json_object_get(r, "created_us"));
  j->started_us = json_integer_value(json_object_get(r, "started_us"));
  j->deadline_us = json_integer_value(json_object_get(r, "deadline_us"));
  j->state = ST_QUEUED; /* a job that was running when the process stopped runs again */
  if (!j->input) {
    job_free(j);
    return NULL;
  }
  return j;
}

static bool resume_jobs(vd_llm *llm, vd_error *err) {
  json_t *records = vd_llm_store_unfinished_jobs(llm->store, err);
  if (!records) return false;
  size_t i;
  json_t *r;
  json_array_foreach(records, i, r) {
    job *j = job_from_record(llm, r);
    if (!j) {
      fprintf(stderr, "verdict llm: unreadable stored job %s skipped\n",
              json_string_value(json_object_get(r, "job_id")));
      continue;
    }
    push_event(llm, j, "state", json_pack("{s:s,s:i}", "state", "queued", "attempt", j->attempts));
    if (!add_live(llm, j)) {
      job_free(j);
      json_decref(records);
      return vd_error_set(err, "out of memory resuming jobs");
    }
  }
  json_decref(records);
  return true;
}

vd_llm *vd_llm_open(const vd_llm_config *cfg, vd_error *err) {
  if (cfg->queue_capacity == 0 || cfg->max_in_flight < 1 || cfg->max_attempts < 1) {
    vd_error_set(err, "llm config: queue_capacity, max_in_flight and max_attempts must be >= 1");
    return NULL;
  }
  vd_llm *llm = calloc(1, sizeof *llm);
  if (!llm) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  llm->cfg = *cfg;
  pthread_mutex_init(&llm->mu, NULL);
  pthread_cond_init(&llm->changed, NULL);
  for (int t = 0; t < VD_LLM_TIER_COUNT; t++)
    if (provider_for_tier(llm, (vd_llm_tier)t) < 0) {
      vd_error_field(err, "llm.tiers",
                     "llm config: tier %s names provider \"%s\", which is not configured",
                     t == 0 ? "small" : "large", cfg->tiers[t].provider);
      goto fail;
    }
  for (size_t p = 0; p < cfg->provider_count; p++) {
    const char *key =
        cfg->providers[p].api_key_env[0] ? getenv(cfg->providers[p].api_key_env) : NULL;
    llm->keys[p] = key && *key ? strdup(key) : NULL;
  }
  if (!mkdir_p(cfg->data_dir, err)) goto fail;
  char path[VD_LLM_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/llm.sqlite", cfg->data_dir);
  if (!(llm->store = vd_llm_store_open(path, false, err))) goto fail;
  if (!(llm->checkpointer = vd_llm_store_open(path, true, err))) goto fail;
  llm->front = llm->store;
  if (!(llm->reader = vd_llm_store_open(path, false, err))) goto fail;
  llm->tasks = vd_llm_tasks_load(cfg, err);
  if (!llm->tasks) goto fail;
  if (!(llm->uuids = vd_uuid_gen_new(err))) goto fail;
  llm->rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(llm->rng, cfg->jitter_seed ? cfg->jitter_seed : (unsigned long)vd_monotonic_ns());
  llm->multi = curl_multi_init();
  if (!llm->rng || !llm->multi) {
    vd_error_set(err, "out of memory");
    goto fail;
  }
  if (!resume_jobs(llm, err)) goto fail;
  vd_llm_store_cache_purge(llm->store, vd_wall_us());
  if (pthread_create(&llm->worker, NULL, worker_main, llm) != 0) {
    vd_error_set(err, "cannot start the LLM worker thread");
    goto fail;
  }
  llm->worker_started = true;
  return llm;
fail:
  vd_llm_close(llm);
  return NULL;
}

void vd_llm_close(vd_llm *llm) {
  if (!llm) return;
  if (llm->worker_started) {
    pthread_mutex_lock(&llm->mu);
    llm->stop = true;
    pthread_mutex_unlock(&llm->mu);
    curl_multi_wakeup(llm->multi);
    pthread_join(llm->worker, NULL);
  }
  for (size_t i = 0; i < llm->live_count; i++) {
    job *j = llm->live[i];
    if (j->easy && j->in_flight) curl_multi_remove_handle(llm->multi, j->easy);
    job_free(j);
  }
  free(llm->live);
  for (size_t i = 0; i < RECENT_JOBS; i++) job_free(llm->recent[i]);
  for (size_t p = 0; p < VD_LLM_MAX_PROVIDERS; p++) {
    if (llm->keys[p]) memset(llm->keys[p], 0, strlen(llm->keys[p]));
    free(llm->keys[p]);
  }
  if (llm->multi) curl_multi_cleanup(llm->multi);
  if (llm->rng) gsl_rng_free(llm->rng);
  vd_uuid_gen_free(llm->uuids);
  vd_llm_tasks_free(llm->tasks);
  for (size_t i = 0; i < llm->retired_count; i++) vd_llm_tasks_free(llm->retired[i]);
  free(llm->retired);
  vd_llm_store_close(llm->checkpointer);
  vd_llm_store_close(llm->reader);
  vd_llm_store_close(llm->store);
  pthread_cond_destroy(&llm->changed);
  pthread_mutex_destroy(&llm->mu);
  free(llm);
}

bool vd_llm_reload_prompts(vd_llm *llm, json_t **versions, vd_error *err) {
  vd_llm_tasks *fresh = vd_llm_tasks_load(&llm->cfg, err);
  if (!fresh) return false;
  for (int t = 0; t < VD_LLM_TASK_COUNT; t++) {
    const vd_prompt *prompt = vd_llm_tasks_prompt(fresh, (vd_llm_task)t);
    if (prompt && provider_for_tier(llm, vd_prompt_tier(prompt)) < 0) {
      vd_error_set(err, "prompt for task %s: its tier has no provider",
                   vd_llm_task_name((vd_llm_task)t));
      vd_llm_tasks_free(fresh);
      return false;
    }
  }
  pthread_mutex_lock(&llm->mu);
  vd_llm_tasks **grown = realloc(llm->retired, (llm->retired_count + 1) * sizeof(vd_llm_tasks *));
  if (!grown) {
    pthread_mutex_unlock(&llm->mu);
    vd_llm_tasks_free(fresh);
    return vd_error_set(err, "out of memory");
  }
  llm->retired = grown;
  llm->retired[llm->retired_count++] = llm->tasks;
  llm->tasks = fresh;
  pthread_mutex_unlock(&llm->mu);
  if (versions) {
    *versions = json_object();
    for (int t = 0; t < VD_LLM_TASK_COUNT; t++)
      json_object_set_new(*versions, vd_llm_task_name((vd_llm_task)t),
                          json_string(vd_llm_tasks_prompt_version(fresh, (vd_llm_task)t)));
  }
  return true;
}

/* ---- submit ---- */

static void cache_key(const vd_llm *llm, vd_llm_task task, const char *prompt_version,
                      const json_t *input, char out[VD_SHA256_HEX_SIZE]) {
  const vd_llm_tier_config *tier = &llm->cfg.tiers[task_tier(llm, task)];
  char *canonical = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
  vd_buf b = {0};
  vd_buf_printf(&b, "%s", vd_llm_task_name(task));
  vd_buf_append(&b, "", 1);
  vd_buf_printf(&b, "%s", prompt_version);
  vd_buf_append(&b, "", 1);
  vd_buf_printf(&b, "%s/%s", tier->provider, tier->model);
  vd_buf_append(&b, "", 1);
  vd_buf_puts(&b, canonical ? canonical : "");
  vd_sha256_hex(b.data, b.len, out);
  vd_buf_free(&b);
  free(canonical);
}

static void release_slot(vd_llm *llm) {
  pthread_mutex_lock(&llm->mu);
  llm->reserved--;
  pthread_mutex_unlock(&llm->mu);
}

vd_llm_submit_status vd_llm_submit(vd_llm *llm, vd_llm_task task, const json_t *input,
                                   const vd_llm_submit_opts *opts, char job_id[VD_LLM_JOB_ID_SIZE],
                                   vd_error *err) {
  job_id[0] = '\0';
  if (task >= VD_LLM_TASK_COUNT) {
    vd_error_set(err, "unknown task");
    return VD_LLM_REJECTED;
  }
  char today[16];
  today_utc(today);
  json_t *normal = vd_llm_tasks_normalise(llm->tasks, task, input, today, err);
  if (!normal) {
    pthread_mutex_lock(&llm->mu);
    llm->stats.rejected_invalid++;
    pthread_mutex_unlock(&llm->mu);
    return VD_LLM_REJECTED;
  }
  pthread_mutex_lock(&llm->mu);
  bool full = llm->live_count + llm->reserved >= llm->cfg.queue_capacity;
  if (full)
    llm->stats.rejected_queue_full++;
  else
    llm->reserved++;
  pthread_mutex_unlock(&llm->mu);
  if (full) {
    json_decref(normal);
    vd_error_set(err, "the LLM job queue is full (%zu unfinished jobs); retry later",
                 llm->cfg.queue_capacity);
    return VD_LLM_QUEUE_FULL;
  }
  job *j = job_new(llm);
  if (!j || !vd_uuid_v7(llm->uuids, j->id, err)) {
    if (!j) vd_error_set(err, "out of memory");
    job_free(j);
    json_decref(normal);
    release_slot(llm);
    return VD_LLM_REJECTED;
  }
  j->task = task;
  j->input = normal;
  copy(j->feature, sizeof j->feature,
       opts && opts->feature ? opts->feature : vd_llm_task_name(task));
  copy(j->ref, sizeof j->ref, opts ? opts->ref : NULL);
  copy(j->prompt_version, sizeof j->prompt_version, vd_llm_tasks_prompt_version(llm->tasks, task));
  j->created_us = vd_wall_us();
  j->deadline_us = j->created_us + llm->cfg.tasks[task].deadline_ms * 1000;
  json_t *cached = NULL;
  if (llm->cfg.cache_ttl_s > 0 && llm->cfg.tasks[task].enabled) {
    cache_key(llm, task, j->prompt_version, normal, j->cache_key);
    cached = vd_llm_store_cache_get(llm->reader, j->cache_key, j->created_us);
    pthread_mutex_lock(&llm->mu);
    llm->stats.cache_lookups++;
    if (cached) llm->stats.cache_hits++;
    pthread_mutex_unlock(&llm->mu);
  }
  copy(job_id, VD_LLM_JOB_ID_SIZE, j->id);
  if (cached) {
    const vd_llm_tier_config *tier = &llm->cfg.tiers[task_tier(llm, task)];
    copy(j->provider, sizeof j->provider, tier->provider);
    copy(j->model, sizeof j->model, tier->model);
    j->cache_hit = true;
    j->started_us = j->created_us;
    j->ttft_ms = 0;
    j->latency_ms = 0;
    pthread_mutex_lock(&llm->mu);
    llm->stats.submitted++;
    llm->reserved--;
    pthread_mutex_unlock(&llm->mu);
    /* Never in the live list, so the worker cannot pick it up: it goes straight to the ring. */
    finish(llm, j, ST_SUCCEEDED, "cache", cached, NULL, llm->front);
    return VD_LLM_CACHED;
  }
  pthread_mutex_lock(&llm->mu);
  push_event(llm, j, "state", json_pack("{s:s,s:i}", "state", "queued", "attempt", 0));
  json_t *record = job_record(j);
  pthread_mutex_unlock(&llm->mu);
  bool stored = vd_llm_store_put_job(llm->front, record, err);
  json_decref(record);
  if (!stored) {
    job_free(j);
    job_id[0] = '\0';
    release_slot(llm);
    return VD_LLM_REJECTED;
  }
  pthread_mutex_lock(&llm->mu);
  llm->reserved--;
  bool ok = add_live(llm, j);
  if (ok) llm->stats.submitted++;
  pthread_mutex_unlock(&llm->mu);
  if (!ok) {
    job_free(j);
    job_id[0] = '\0';
    vd_error_set(err, "out of memory");
    return VD_LLM_REJECTED;
  }
  curl_multi_wakeup(llm->multi);
  return VD_LLM_SUBMITTED;
}

/* ---- reading ---- */

static json_t *public_view(json_t *record) {
  static const char *const internal[] = {"input",       "created_us",   "started_us", "finished_us",
                                         "deadline_us", "failed_calls", "cache_key"};
  for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
    json_object_del(record, internal[i]);
  return record;
}

json_t *vd_llm_job(vd_llm *llm, const char *job_id) {
  pthread_mutex_lock(&llm->mu);
  job *j = find_job(llm, job_id);
  json_t *out = j ? job_json(j) : NULL;
  pthread_mutex_unlock(&llm->mu);
  if (out) return out;
  json_t *record = vd_llm_store_get_job(llm->reader, job_id);
  return record ? public_view(record) : NULL;
}

static bool terminal(job_state s) {
  return s == ST_SUCCEEDED || s == ST_FAILED || s == ST_FALLBACK;
}

static void deadline_from_now(struct timespec *ts, int64_t timeout_ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += timeout_ms / 1000;
  ts->tv_nsec += (timeout_ms % 1000) * 1000000;
  if (ts->tv_nsec >= 1000000000) ts->tv_sec++, ts->tv_nsec -= 1000000000;
}

bool vd_llm_wait(vd_llm *llm, const char *job_id, int64_t timeout_ms) {
  struct timespec until;
  deadline_from_now(&until, timeout_ms);
  pthread_mutex_lock(&llm->mu);
  for (;;) {
    job *j = find_job(llm, job_id);
    if (!j) break;
    if (terminal(j->state)) {
      pthread_mutex_unlock(&llm->mu);
      return true;
    }
    if (pthread_cond_timedwait(&llm->changed, &llm->mu, &until) == ETIMEDOUT) {
      pthread_mutex_unlock(&llm->mu);
      return false;
    }
  }
  pthread_mutex_unlock(&llm->mu);
  json_t *record = vd_llm_store_get_job(llm->reader, job_id);
  const char *state = json_string_value(json_object_get(record, "state"));
  bool done = state && strcmp(state, "queued") != 0 && strcmp(state, "running") != 0;
  json_decref(record);
  return done;
}

json_t *vd_llm_events(vd_llm *llm, const char *job_id, uint64_t *cursor, int64_t timeout_ms,
                      bool *finished, vd_error *err) {
  *finished = false;
  struct timespec until;
  deadline_from_now(&until, timeout_ms);
  pthread_mutex_lock(&llm->mu);
  job *j = find_job(llm, job_id);
  if (j) {
    /* a finished job has no events to come: a client resuming past its end is not kept waiting */
    while (j->next_seq <= *cursor && !terminal(j->state) && !llm->stop &&
           pthread_cond_timedwait(&llm->changed, &llm->mu, &until) != ETIMEDOUT) {
      j = find_job(llm, job_id); /* it may have been evicted from the recent ring */
      if (!j) break;
    }
  }
  if (j) {
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(j->events, i, e) {
      uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
      if (seq <= *cursor) continue;
      json_array_append(out, e);
      *cursor = seq;
      if (strcmp(json_string_value(json_object_get(e, "event")), "done") == 0) *finished = true;
    }
    if (!*finished && terminal(j->state)) { /* resumed past "done": it is sent again, as stored */
      json_t *last = json_array_get(j->events, json_array_size(j->events) - 1);
      if (last) json_array_append(out, last);
      *finished = true;
    }
    pthread_mutex_unlock(&llm->mu);
    json_t *copy_out = json_deep_copy(out); /* the caller's copy shares nothing with the job */
    json_decref(out);
    return copy_out;
  }
  pthread_mutex_unlock(&llm->mu);
  json_t *record = vd_llm_store_get_job(llm->reader, job_id);
  if (!record) {
    vd_error_set(err, "no job %s", job_id);
    return NULL;
  }
  json_t *out = json_array();
  const char *state = json_string_value(json_object_get(record, "state"));
  if (state && strcmp(state, "queued") != 0 && strcmp(state, "running") != 0) {
    /* Whatever the cursor (a client resuming with its Last-Event-ID), the stream ends with the
     * job's final state. */
    json_array_append_new(out, json_pack("{s:I,s:s,s:o}", "seq", (json_int_t)*cursor + 1, "event",
                                         "done", "data", public_view(json_incref(record))));
    *cursor += 1;
    *finished = true;
  }
  json_decref(record);
  return out;
}

void vd_llm_event_sse(const json_t *event, vd_buf *out) {
  char *data = json_dumps(json_object_get(event, "data"), JSON_COMPACT);
  vd_buf_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n",
                (long long)json_integer_value(json_object_get(event, "seq")),
                json_string_value(json_object_get(event, "event")), data ? data : "{}");
  free(data);
}

void vd_llm_get_stats(vd_llm *llm, vd_llm_stats *out) {
  pthread_mutex_lock(&llm->mu);
  *out = llm->stats;
  out->queued = 0;
  out->running = 0;
  for (size_t i = 0; i < llm->live_count; i++) {
    if (llm->live[i]->state == ST_QUEUED) out->queued++;
    if (llm->live[i]->state == ST_RUNNING) out->running++;
  }
  int64_t now = vd_wall_us();
  for (size_t p = 0; p < llm->cfg.provider_count; p++)
    out->breaker_open[p] =
        llm->breakers[p].open_until_us != 0 &&
        (now < llm->breakers[p].open_until_us || llm->breakers[p].trial_in_flight);
  pthread_mutex_unlock(&llm->mu);
}

json_t *vd_llm_costs(vd_llm *llm, const char *from_day, const char *to_day, vd_error *err) {
  return vd_llm_store_costs(llm->reader, from_day, to_day, err);
}

double vd_llm_spend_today(vd_llm *llm, const char *feature) {
  char today[16];
  today_utc(today);
  return vd_llm_store_spend(llm->reader, feature, today);
}

static void metric(vd_buf *out, const char *name, const char *type, const char *help) {
  vd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void vd_llm_metrics_text(vd_llm *llm, vd_buf *out) {
  vd_llm_stats st;
  vd_llm_get_stats(llm, &st);
  metric(out, "verdict_llm_jobs_total", "counter", "LLM jobs by outcome.");
  vd_buf_printf(out,
                "verdict_llm_jobs_total{outcome=\"succeeded\"} %llu\n"
                "verdict_llm_jobs_total{outcome=\"fallback\"} %llu\n"
                "verdict_llm_jobs_total{outcome=\"failed\"} %llu\n"
                "verdict_llm_jobs_total{outcome=\"rejected_queue_full\"} %llu\n"
                "verdict_llm_jobs_total{outcome=\"rejected_invalid\"} %llu\n",
                (unsigned long long)st.succeeded, (unsigned long long)st.fallback,
                (unsigned long long)st.failed, (unsigned long long)st.rejected_queue_full,
                (unsigned long long)st.rejected_invalid);
  metric(out, "verdict_llm_fallbacks_total", "counter", "Fallbacks by cause (budget, breaker).");
  vd_buf_printf(out,
                "verdict_llm_fallbacks_total{cause=\"budget\"} %llu\n"
                "verdict_llm_fallbacks_total{cause=\"breaker\"} %llu\n",
                (unsigned long long)st.budget_fallbacks, (unsigned long long)st.breaker_fallbacks);
  metric(out, "verdict_llm_provider_calls_total", "counter", "Provider calls made.");
  vd_buf_printf(out, "verdict_llm_provider_calls_total %llu\n",
                (unsigned long long)st.provider_calls);
  metric(out, "verdict_llm_provider_failures_total", "counter", "Provider calls that failed.");
  vd_buf_printf(out, "verdict_llm_provider_failures_total %llu\n",
                (unsigned long long)st.provider_failures);
  metric(out, "verdict_llm_retries_total", "counter",
         "Retries scheduled after transient failures.");
  vd_buf_printf(out, "verdict_llm_retries_total %llu\n", (unsigned long long)st.retries);
  metric(out, "verdict_llm_repairs_total", "counter", "Repair requests after invalid output.");
  vd_buf_printf(out, "verdict_llm_repairs_total %llu\n", (unsigned long long)st.repairs);
  metric(out, "verdict_llm_cache_lookups_total", "counter", "Result cache lookups.");
  vd_buf_printf(out, "verdict_llm_cache_lookups_total %llu\n",
                (unsigned long long)st.cache_lookups);
  metric(out, "verdict_llm_cache_hits_total", "counter", "Result cache hits.");
  vd_buf_printf(out, "verdict_llm_cache_hits_total %llu\n", (unsigned long long)st.cache_hits);
  metric(out, "verdict_llm_cache_hit_ratio", "gauge", "Cache hits / lookups since start.");
  vd_buf_printf(out, "verdict_llm_cache_hit_ratio %.6f\n",
                st.cache_lookups ? (double)st.cache_hits / (double)st.cache_lookups : 0.0);
  metric(out, "verdict_llm_tokens_total", "counter", "Tokens reported by the providers.");
  vd_buf_printf(out,
                "verdict_llm_tokens_total{direction=\"input\"} %lld\n"
                "verdict_llm_tokens_total{direction=\"output\"} %lld\n",
                (long long)st.input_tokens, (long long)st.output_tokens);
  metric(out, "verdict_llm_cost_usd_total", "counter",
         "Cost of provider calls at the tier prices.");
  vd_buf_printf(out, "verdict_llm_cost_usd_total %.6f\n", st.cost_usd);
  metric(out, "verdict_llm_jobs", "gauge", "Unfinished jobs by state.");
  vd_buf_printf(out,
                "verdict_llm_jobs{state=\"queued\"} %zu\nverdict_llm_jobs{state=\"running\"} %zu\n",
                st.queued, st.running);
  metric(out, "verdict_llm_breaker_open", "gauge",
         "1 while the provider's circuit breaker is open.");
  for (size_t p = 0; p < llm->cfg.provider_count; p++)
    vd_buf_printf(out, "verdict_llm_breaker_open{provider=\"%s\"} %d\n", llm->cfg.providers[p].name,
                  st.breaker_open[p] ? 1 : 0);
  metric(out, "verdict_llm_breaker_trips_total", "counter",
         "Times a provider's circuit breaker opened from closed.");
  vd_buf_printf(out, "verdict_llm_breaker_trips_total %llu\n",
                (unsigned long long)st.breaker_trips);
  metric(out, "verdict_llm_breaker_trials_total", "counter",
         "Half-open trial calls made while a breaker was open.");
  vd_buf_printf(out, "verdict_llm_breaker_trials_total %llu\n",
                (unsigned long long)st.breaker_trials);
  metric(out, "verdict_llm_ttft_ms_mean", "gauge", "Mean time to first token of provider calls.");
  vd_buf_printf(out, "verdict_llm_ttft_ms_mean %.3f\n",
                st.ttft_count ? (double)st.ttft_ms_sum / (double)st.ttft_count : 0.0);
}
