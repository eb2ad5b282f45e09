#include "vd_llm_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct vd_llm_store {
  sqlite3 *db;
};

static const char schema_sql[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS llm_jobs ("
    "  job_id TEXT PRIMARY KEY, state TEXT NOT NULL, task TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL, record TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS llm_jobs_state ON llm_jobs(state, created_us);"
    "CREATE TABLE IF NOT EXISTS llm_cache ("
    "  key TEXT PRIMARY KEY, task TEXT NOT NULL, result TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL, expires_us INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS llm_ledger ("
    "  id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, day TEXT NOT NULL, job_id TEXT NOT NULL,"
    "  task TEXT NOT NULL, feature TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    "  cost_usd REAL NOT NULL, outcome TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS llm_ledger_day ON llm_ledger(day, feature);";

vd_llm_store *vd_llm_store_open(const char *path, bool checkpoints, vd_error *err) {
  vd_llm_store *s = calloc(1, sizeof *s);
  if (!s) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  int rc = sqlite3_open_v2(
      path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
  char *msg = NULL;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(s->db, 5000);
    rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg);
  }
  if (rc == SQLITE_OK && !checkpoints)
    rc = sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint=0;", NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    vd_error_set(err, "%s: cannot open the LLM store: %s", path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    sqlite3_close(s->db);
    free(s);
    return NULL;
  }
  return s;
}

void vd_llm_store_close(vd_llm_store *s) {
  if (!s) return;
  sqlite3_close(s->db);
  free(s);
}

static sqlite3_stmt *prepare(vd_llm_store *s, const char *sql, vd_error *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    vd_error_set(err, "LLM store: %s", sqlite3_errmsg(s->db));
    return NULL;
  }
  return st;
}

static bool step_done(vd_llm_store *s, sqlite3_stmt *st, vd_error *err) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return vd_error_set(err, "LLM store: %s", sqlite3_errmsg(s->db));
  return true;
}

static json_t *column_json(sqlite3_stmt *st, int column) {
  const char *text = (const char *)sqlite3_column_text(st, column);
  return text ? json_loads(text, 0, NULL) : NULL;
}

bool vd_llm_store_put_job(vd_llm_store *s, const json_t *record, vd_error *err) {
  char *text = json_dumps(record, JSON_COMPACT);
  if (!text) return vd_error_set(err, "LLM store: cannot encode the job record");
  sqlite3_stmt *st =
      prepare(s,
              "INSERT INTO llm_jobs(job_id, state, task, created_us, record) VALUES(?,?,?,?,?) "
              "ON CONFLICT(job_id) DO UPDATE SET state=excluded.state, record=excluded.record",
              err);
  if (!st) {
    free(text);
    return false;
  }
  sqlite3_bind_text(st, 1, json_string_value(json_object_get(record, "job_id")), -1,
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, json_string_value(json_object_get(record, "state")), -1,
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, json_string_value(json_object_get(record, "task")), -1,
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(record, "created_us")));
  sqlite3_bind_text(st, 5, text, -1, free);
  return step_done(s, st, err);
}

json_t *vd_llm_store_get_job(vd_llm_store *s, const char *job_id) {
  sqlite3_stmt *st = prepare(s, "SELECT record FROM llm_jobs WHERE job_id = ?", NULL);
  if (!st) return NULL;
  sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
  json_t *record = sqlite3_step(st) == SQLITE_ROW ? column_json(st, 0) : NULL;
  sqlite3_finalize(st);
  return record;
}

json_t *vd_llm_store_unfinished_jobs(vd_llm_store *s, vd_error *err) {
  sqlite3_stmt *st = prepare(s,
                             "SELECT record FROM llm_jobs WHERE state IN ('queued','running') "
                             "ORDER BY created_us, job_id",
                             err);
  if (!st) return NULL;
  json_t *jobs = json_array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *record = column_json(st, 0);
    if (record) json_array_append_new(jobs, record);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    json_decref(jobs);
    vd_error_set(err, "LLM store: %s", sqlite3_errmsg(s->db));
    return NULL;
  }
  return jobs;
}

json_t *vd_llm_store_cache_get(vd_llm_store *s, const char *key, int64_t now_us) {
  sqlite3_stmt *st =
      prepare(s, "SELECT result FROM llm_cache WHERE key = ? AND expires_us > ?", NULL);
  if (!st) return NULL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, now_us);
  json_t *result = sqlite3_step(st) == SQLITE_ROW ? column_json(st, 0) : NULL;
  sqlite3_finalize(st);
  return result;
}

bool vd_llm_store_cache_put(vd_llm_store *s, const char *key, const char *task,
                            const json_t *result, int64_t now_us, int64_t expires_us,
                            vd_error *err) {
  char *text = json_dumps(result, JSON_COMPACT);
  if (!text) return vd_error_set(err, "LLM store: cannot encode the cached result");
  sqlite3_stmt *st = prepare(s,
                             "INSERT OR REPLACE INTO llm_cache(key, task, result, created_us, "
                             "expires_us) VALUES(?,?,?,?,?)",
                             err);
  if (!st) {
    free(text);
    return false;
  }
  sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, task, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, text, -1, free);
  sqlite3_bind_int64(st, 4, now_us);
  sqlite3_bind_int64(st, 5, expires_us);
  return step_done(s, st, err);
}

int64_t vd_llm_store_cache_purge(vd_llm_store *s, int64_t now_us) {
  sqlite3_stmt *st = prepare(s, "DELETE FROM llm_cache WHERE expires_us <= ?", NULL);
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, now_us);
  if (!step_done(s, st, NULL)) return 0;
  return sqlite3_changes64(s->db);
}

bool vd_llm_store_ledger_add(vd_llm_store *s, const vd_llm_ledger_row *r, vd_error *err) {
  sqlite3_stmt *st = prepare(s,
                             "INSERT INTO llm_ledger(at_us, day, job_id, task, feature, provider, "
                             "model, attempt, input_tokens, output_tokens, cost_usd, outcome) "
                             "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                             err);
  if (!st) return false;
  sqlite3_bind_int64(st, 1, r->at_us);
  sqlite3_bind_text(st, 2, r->day, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, r->job_id, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, r->task, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, r->feature, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, r->provider, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 7, r->model, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 8, r->attempt);
  sqlite3_bind_int64(st, 9, r->input_tokens);
  sqlite3_bind_int64(st, 10, r->output_tokens);
  sqlite3_bind_double(st, 11, r->cost_usd);
  sqlite3_bind_text(st, 12, r->outcome, -1, SQLITE_TRANSIENT);
  return step_done(s, st, err);
}

double vd_llm_store_spend(vd_llm_store *s, const char *feature, const char *day) {
  sqlite3_stmt *st = prepare(
      s, "SELECT COALESCE(SUM(cost_usd), 0) FROM llm_ledger WHERE day = ? AND feature = ?", NULL);
  if (!st) return 0;
  sqlite3_bind_text(st, 1, day, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, feature, -1, SQLITE_TRANSIENT);
  double total = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0;
  sqlite3_finalize(st);
  return total;
}

json_t *vd_llm_store_costs(vd_llm_store *s, const char *from_day, const char *to_day,
                           vd_error *err) {
  sqlite3_stmt *st = prepare(s,
                             "SELECT day, task, feature, COUNT(*), SUM(input_tokens), "
                             "SUM(output_tokens), SUM(cost_usd) FROM llm_ledger "
                             "WHERE day >= ? AND day <= ? GROUP BY day, task, feature "
                             "ORDER BY day, task, feature",
                             err);
  if (!st) return NULL;
  sqlite3_bind_text(st, 1, from_day, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, to_day, -1, SQLITE_TRANSIENT);
  json_t *rows = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    json_array_append_new(
        rows, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:f}", "day", sqlite3_column_text(st, 0), "task",
                        sqlite3_column_text(st, 1), "feature", sqlite3_column_text(st, 2), "calls",
                        (json_int_t)sqlite3_column_int64(st, 3), "input_tokens",
                        (json_int_t)sqlite3_column_int64(st, 4), "output_tokens",
                        (json_int_t)sqlite3_column_int64(st, 5), "cost_usd",
                        sqlite3_column_double(st, 6)));
  }
  sqlite3_finalize(st);
  return rows;
}

json_t *vd_llm_store_prompt_stats(vd_llm_store *s, const char *task, vd_error *err) {
  /* Per job first (its calls' cost and tokens from the ledger), then per prompt version. A job
   * failed validation when its first answer needed a repair or it fell back for invalid output. */
  sqlite3_stmt *st = prepare(
      s,
      "WITH j AS (SELECT json_extract(record, '$.prompt_version') AS pv,"
      "  json_extract(record, '$.latency_ms') AS latency,"
      "  (json_extract(record, '$.repaired') = 1 OR json_extract(record, '$.reason') LIKE "
      "   'the answer failed validation%') AS invalid,"
      "  (SELECT COUNT(*) FROM llm_ledger l WHERE l.job_id = llm_jobs.job_id) AS calls,"
      "  (SELECT COALESCE(SUM(cost_usd), 0) FROM llm_ledger l WHERE l.job_id = llm_jobs.job_id)"
      "   AS cost,"
      "  (SELECT COALESCE(SUM(input_tokens), 0) FROM llm_ledger l"
      "   WHERE l.job_id = llm_jobs.job_id) AS tin"
      "  FROM llm_jobs WHERE task = ? AND state IN ('succeeded', 'fallback', 'failed'))"
      "SELECT pv, COUNT(*), SUM(calls > 0), SUM(calls), SUM(cost), AVG(latency),"
      "  SUM(CASE WHEN calls > 0 THEN invalid ELSE 0 END), SUM(tin) FROM j"
      "  GROUP BY pv ORDER BY pv",
      err);
  if (!st) return NULL;
  sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
  json_t *rows = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *pv = sqlite3_column_text(st, 0);
    json_array_append_new(
        rows,
        json_pack("{s:s,s:I,s:I,s:I,s:f,s:f,s:I,s:I}", "prompt_version", pv ? (const char *)pv : "",
                  "jobs", (json_int_t)sqlite3_column_int64(st, 1), "jobs_with_calls",
                  (json_int_t)sqlite3_column_int64(st, 2), "calls",
                  (json_int_t)sqlite3_column_int64(st, 3), "cost_usd", sqlite3_column_double(st, 4),
                  "mean_latency_ms", sqlite3_column_double(st, 5), "validation_failures",
                  (json_int_t)sqlite3_column_int64(st, 6), "input_tokens",
                  (json_int_t)sqlite3_column_int64(st, 7)));
  }
  sqlite3_finalize(st);
  return rows;
}

void vd_llm_store_checkpoint(vd_llm_store *s) {
  sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}
