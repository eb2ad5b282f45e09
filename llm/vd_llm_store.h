/* vd_llm_store: the LLM layer's durable state in one SQLite file in the data folder
 * (DATA_DIR/llm.sqlite, WAL): jobs (so a restart resumes queued and running jobs), the result cache
 * (with expiry) and the cost ledger (one row per provider call).
 *
 * Thread-safe: each vd_llm_store is one connection in SQLite's serialized mode and every call
 * prepares its own statement. Ownership: returned json_t values are new references the caller
 * decrefs; arguments are borrowed. */
#ifndef VD_LLM_STORE_H
#define VD_LLM_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vd_error.h"

typedef struct vd_llm_store vd_llm_store;

/* Opens (creating when absent) the store at path. Several connections may share one file; only
 * those opened with checkpoints = true fold the WAL back into the database (SQLite's automatic
 * checkpoint), so a latency-sensitive connection can leave that work to another. */
vd_llm_store *vd_llm_store_open(const char *path, bool checkpoints, vd_error *err);
void vd_llm_store_close(vd_llm_store *store);
/* A passive WAL checkpoint: copies what it can back into the database without blocking writers
 * (for a store opened with checkpoints = false on its writing connection). */
void vd_llm_store_checkpoint(vd_llm_store *store);

/* Jobs: a job record is a JSON object with at least job_id, state, task and created_us. */
bool vd_llm_store_put_job(vd_llm_store *store, const json_t *record, vd_error *err);
json_t *vd_llm_store_get_job(vd_llm_store *store, const char *job_id);
/* Records of jobs in state queued or running, oldest first (a JSON array). */
json_t *vd_llm_store_unfinished_jobs(vd_llm_store *store, vd_error *err);

/* Cache: a result under key, valid until expires_us (wall clock). get returns NULL when absent or
 * expired. */
json_t *vd_llm_store_cache_get(vd_llm_store *store, const char *key, int64_t now_us);
bool vd_llm_store_cache_put(vd_llm_store *store, const char *key, const char *task,
                            const json_t *result, int64_t now_us, int64_t expires_us,
                            vd_error *err);
/* Deletes expired entries; returns how many. */
int64_t vd_llm_store_cache_purge(vd_llm_store *store, int64_t now_us);

/* Ledger: one provider call. day is "YYYY-MM-DD" (UTC). */
typedef struct vd_llm_ledger_row {
  int64_t at_us;
  const char *day;
  const char *job_id;
  const char *task;
  const char *feature;
  const char *provider;
  const char *model;
  int attempt;
  int64_t input_tokens;
  int64_t output_tokens;
  double cost_usd;
  const char *outcome; /* "ok" or the failure kind */
} vd_llm_ledger_row;

bool vd_llm_store_ledger_add(vd_llm_store *store, const vd_llm_ledger_row *row, vd_error *err);
/* Total cost in USD of feature's calls on day. */
double vd_llm_store_spend(vd_llm_store *store, const char *feature, const char *day);
/* Per day, task and feature: [{day, task, feature, calls, input_tokens, output_tokens, cost_usd}]
 * for days in [from_day, to_day] (inclusive, "YYYY-MM-DD"). */
json_t *vd_llm_store_costs(vd_llm_store *store, const char *from_day, const char *to_day,
                           vd_error *err);

/* Per prompt version of task's finished jobs: [{prompt_version, jobs, jobs_with_calls, calls,
 * cost_usd, mean_latency_ms, validation_failures (jobs with calls whose first answer failed
 * validation), input_tokens}] — for `verdict prompts stats`. */
json_t *vd_llm_store_prompt_stats(vd_llm_store *store, const char *task, vd_error *err);

#endif
