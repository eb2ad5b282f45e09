/* The decision log: durability under SIGKILL, group commit, overload and failure statuses,
 * keyset pagination, retention, read-only folders, clean shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vd_decision_log.h"
#include "vd_journal.h"
#include "vd_test.h"
#include "vd_time.h"
#include "vd_uuid.h"

static bool under_sanitizer(void) { return getenv("VERDICT_UNDER_SANITIZER") != NULL; }

typedef struct fixture {
  char dir[64];
  char path[128];
} fixture;

static void fixture_init(fixture *f) {
  snprintf(f->dir, sizeof f->dir, "/tmp/vd-dlog-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/decisions.db", f->dir);
}

static void fixture_done(fixture *f) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "chmod -R u+w %s; rm -rf %s", f->dir, f->dir);
  ck_assert_int_eq(system(cmd), 0);
}

static vd_decision_log *open_log(const vd_decision_log_config *config) {
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(config, &err);
  ck_assert_msg(log != NULL, "open: %s", err.message);
  return log;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Appends a small trace {"decision_id": id, "n": n}. */
static vd_log_status append_one(vd_decision_log *log, const char *id, const char *kind,
                                const char *subject, int64_t ts_us, int n, vd_error *err) {
  char trace[256];
  snprintf(trace, sizeof trace, "{\"decision_id\":\"%s\",\"n\":%d}", id, n);
  vd_decision_record r = {.id = id,
                          .kind = kind,
                          .subject_id = subject,
                          .timestamp_us = ts_us,
                          .ruleset_version = "rs1",
                          .model_version = "m1",
                          .trace_json = trace};
  return vd_decision_log_append(log, &r, err);
}

/* Holds SQLite's write lock from another connection, so the writer stalls (as behind a slow
 * disk) while the test fills the queue. */
static sqlite3 *hold_write_lock(const char *path) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

static void release_write_lock(sqlite3 *db) {
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

typedef struct appender {
  vd_decision_log *log;
  vd_uuid_gen *gen;
  int count;
  vd_log_status status; /* the last non-OK status, or OK */
  char first_id[VD_UUID_STRING_SIZE];
} appender;

static void *append_many(void *arg) {
  appender *a = arg;
  a->status = VD_LOG_OK;
  for (int i = 0; i < a->count; i++) {
    char id[VD_UUID_STRING_SIZE];
    vd_uuid_v7(a->gen, id, NULL);
    if (i == 0) memcpy(a->first_id, id, sizeof id);
    vd_log_status st = append_one(a->log, id, "promotions", "s", 0, i, NULL);
    if (st != VD_LOG_OK) a->status = st;
  }
  return NULL;
}

START_TEST(append_then_get_returns_the_trace) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_error err = {0};
  ck_assert_int_eq(append_one(log, "id-1", "promotions", "c1", 0, 7, &err), VD_LOG_OK);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "id-1", &trace, &err), VD_LOG_OK);
  ck_assert_str_eq(json_string_value(json_object_get(trace, "decision_id")), "id-1");
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "n")), 7);
  json_decref(trace);
  ck_assert_int_eq(vd_decision_log_get(log, "nope", &trace, &err), VD_LOG_NOT_FOUND);
  ck_assert_ptr_null(trace);
  ck_assert_ptr_nonnull(strstr(err.message, "nope"));
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(amendments_are_appended_and_returned_with_the_trace) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_error err = {0};
  /* an amendment may land before its decision (an LLM answer racing the decision's commit) */
  json_t *first = json_pack("{s:s, s:s}", "type", "llm_escalation", "final_route", "payments");
  ck_assert_int_eq(vd_decision_log_amend(log, "id-a", first, &err), VD_LOG_OK);
  ck_assert_int_eq(append_one(log, "id-a", "triage", "c1", 0, 1, &err), VD_LOG_OK);
  ck_assert_int_eq(append_one(log, "id-b", "triage", "c1", 0, 2, &err), VD_LOG_OK);
  json_t *second = json_pack("{s:s, s:i}", "type", "note", "n", 2);
  ck_assert_int_eq(vd_decision_log_amend(log, "id-a", second, &err), VD_LOG_OK);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "id-a", &trace, &err), VD_LOG_OK);
  json_t *list = json_object_get(trace, "amendments");
  ck_assert_uint_eq(json_array_size(list), 2); /* oldest first, the trace itself unchanged */
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "final_route")),
                   "payments");
  ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(list, 1), "n")), 2);
  ck_assert(json_is_string(json_object_get(json_array_get(list, 1), "amended_at")));
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "n")), 1);
  json_decref(trace);
  ck_assert_int_eq(vd_decision_log_get(log, "id-b", &trace, &err), VD_LOG_OK);
  ck_assert_ptr_null(json_object_get(trace, "amendments")); /* none: no key */
  json_decref(trace);
  ck_assert_int_eq(vd_decision_log_amend(log, "", first, &err), VD_LOG_INVALID);
  json_t *not_object = json_string("x");
  ck_assert_int_eq(vd_decision_log_amend(log, "id-a", not_object, &err), VD_LOG_INVALID);
  json_decref(not_object);
  json_decref(first);
  json_decref(second);
  vd_decision_log_close(log);
  /* durable: still there after a reopen */
  log = open_log(&(vd_decision_log_config){.path = f.path});
  ck_assert_int_eq(vd_decision_log_get(log, "id-a", &trace, &err), VD_LOG_OK);
  ck_assert_uint_eq(json_array_size(json_object_get(trace, "amendments")), 2);
  json_decref(trace);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(invalid_records_are_refused_and_duplicates_counted) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_error err = {0};
  vd_decision_record no_kind = {.id = "x", .trace_json = "{}"};
  ck_assert_int_eq(vd_decision_log_append(log, &no_kind, &err), VD_LOG_INVALID);
  ck_assert_int_eq(append_one(log, "dup", "promotions", NULL, 0, 1, &err), VD_LOG_OK);
  /* journaled at once; the index finds the second id taken and keeps the first */
  ck_assert_int_eq(append_one(log, "dup", "promotions", NULL, 0, 2, &err), VD_LOG_OK);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "dup", &trace, NULL), VD_LOG_OK);
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "n")), 1); /* the first stays */
  json_decref(trace);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.duplicates, 1);
  ck_assert_uint_eq(s.committed, 1);
  ck_assert(s.healthy);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* An append is acknowledged once journaled: it does not wait for SQLite, which is locked
 * elsewhere here; the rows are indexed in a few batches once the lock goes, not one by one. */
START_TEST(appends_are_acknowledged_before_indexing_and_indexed_in_batches) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  enum { THREADS = 8, EACH = 25 };
  pthread_t threads[THREADS];
  appender a[THREADS];
  sqlite3 *lock = hold_write_lock(f.path);
  for (int t = 0; t < THREADS; t++) {
    a[t] = (appender){.log = log, .gen = gen, .count = EACH};
    pthread_create(&threads[t], NULL, append_many, &a[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL); /* all returned while SQLite is still locked */
    ck_assert_int_eq(a[t].status, VD_LOG_OK);
  }
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.queue_depth, THREADS * EACH);
  ck_assert_uint_eq(s.committed, 0);
  release_write_lock(lock);
  ck_assert(vd_decision_log_flush(log, NULL));
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.committed, THREADS * EACH);
  ck_assert_uint_eq(s.queue_depth, 0);
  /* one batch stalled behind the lock, the rest after it: a handful, not 200 */
  ck_assert_uint_le(s.batches, 5);
  ck_assert_uint_ge(s.max_batch, THREADS * EACH / 5);
  for (int t = 0; t < THREADS; t++) {
    json_t *trace = NULL;
    ck_assert_int_eq(vd_decision_log_get(log, a[t].first_id, &trace, NULL), VD_LOG_OK);
    json_decref(trace);
  }
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

START_TEST(a_full_queue_is_a_distinct_overload_error) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path, .queue_capacity = 4});
  sqlite3 *lock = hold_write_lock(f.path); /* the index stalls: journaled rows stay queued */
  vd_error err = {0};
  for (int i = 0; i < 4; i++) {
    char id[32];
    snprintf(id, sizeof id, "q-%d", i);
    ck_assert_int_eq(append_one(log, id, "promotions", NULL, 0, i, &err), VD_LOG_OK);
  }
  uint64_t start = vd_monotonic_ns();
  ck_assert_int_eq(append_one(log, "late", "promotions", NULL, 0, 0, &err), VD_LOG_OVERLOADED);
  ck_assert_uint_lt(vd_monotonic_ns() - start, 100000000); /* REJECT does not wait */
  ck_assert_ptr_nonnull(strstr(err.message, "overloaded"));
  release_write_lock(lock);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "late", &trace, NULL), VD_LOG_NOT_FOUND);
  ck_assert_int_eq(vd_decision_log_get(log, "q-3", &trace, NULL), VD_LOG_OK);
  json_decref(trace);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.overloaded, 1);
  ck_assert_uint_eq(s.committed, 4); /* the queued ones were all indexed */
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(wait_policy_waits_for_space_then_gives_up) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){
      .path = f.path, .queue_capacity = 1, .overload = VD_LOG_OVERLOAD_WAIT, .max_wait_ms = 150});
  sqlite3 *lock = hold_write_lock(f.path);
  vd_error err = {0};
  ck_assert_int_eq(append_one(log, "first", "promotions", NULL, 0, 0, &err), VD_LOG_OK);
  uint64_t start = vd_monotonic_ns();
  ck_assert_int_eq(append_one(log, "late", "promotions", NULL, 0, 0, &err), VD_LOG_OVERLOADED);
  ck_assert_uint_ge(vd_monotonic_ns() - start, 140000000); /* it waited max_wait_ms */
  release_write_lock(lock);
  ck_assert(vd_decision_log_flush(log, &err));
  /* with the index running again, a waiting append gets through */
  ck_assert_int_eq(append_one(log, "later", "promotions", NULL, 0, 0, &err), VD_LOG_OK);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* A lock held elsewhere past busy_timeout_ms fails the indexing commit, not the append: the row
 * stays journaled and queued, a read that needs it says why it cannot see it (not "not found"),
 * and the row is indexed once the lock goes. */
START_TEST(a_lock_timeout_fails_indexing_not_the_append) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path, .busy_timeout_ms = 50});
  sqlite3 *lock = hold_write_lock(f.path);
  vd_error err = {0};
  ck_assert_int_eq(append_one(log, "a", "promotions", NULL, 0, 0, &err), VD_LOG_OK);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "a", &trace, &err), VD_LOG_FAILED);
  ck_assert_msg(strstr(err.message, "not indexed yet") && strstr(err.message, "locked"), "%s",
                err.message);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert(!s.healthy);
  ck_assert_uint_ge(s.failed_commits, 1);
  ck_assert_uint_eq(s.queue_depth, 1);
  release_write_lock(lock);
  ck_assert_int_eq(vd_decision_log_get(log, "a", &trace, &err), VD_LOG_OK);
  json_decref(trace);
  vd_decision_log_stats_get(log, &s);
  ck_assert(s.healthy);
  ck_assert_uint_eq(s.committed, 1);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

static int64_t count_rows(const char *path);

/* max_bytes reached: the index cannot take the rows journaled last, appends fail from then on,
 * and nothing acknowledged is lost — once retention frees room, the waiting rows are indexed. */
START_TEST(a_full_disk_fails_appends_and_retention_recovers) {
  fixture f;
  fixture_init(&f);
  /* stored as text: 8 KiB of spaces would compress to almost nothing and never fill the file */
  vd_decision_log *log = open_log(
      &(vd_decision_log_config){.path = f.path, .max_bytes = 256 * 1024, .uncompressed = true});
  static char trace[8192];
  memset(trace, ' ', sizeof trace - 1);
  trace[0] = '{';
  trace[sizeof trace - 2] = '}';
  vd_error err = {0};
  int stored = 0;
  vd_log_status st = VD_LOG_OK;
  for (int i = 0; i < 1000 && st == VD_LOG_OK; i++) {
    char id[32];
    snprintf(id, sizeof id, "big-%d", i);
    vd_decision_record r = {
        .id = id, .kind = "promotions", .timestamp_us = 1000 + i, .trace_json = trace};
    st = vd_decision_log_append(log, &r, &err);
    if (st == VD_LOG_OK) stored++;
    if (i % 8 == 7) vd_decision_log_flush(log, NULL); /* let the index find the file full */
  }
  ck_assert_int_eq(st, VD_LOG_FAILED);
  ck_assert_msg(strstr(err.message, "full"), "%s", err.message);
  ck_assert_int_gt(stored, 5);
  json_t *got = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "big-0", &got, &err), VD_LOG_OK);
  json_decref(got);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_gt(s.queue_depth, 0); /* acknowledged, waiting for room */
  uint64_t deleted = 0;
  ck_assert(vd_decision_log_purge(log, 1000 + stored, &deleted, &err));
  ck_assert_uint_gt(deleted, 0);
  ck_assert(vd_decision_log_flush(log, &err));
  vd_decision_record again = {.id = "after", .kind = "promotions", .trace_json = trace};
  ck_assert_int_eq(vd_decision_log_append(log, &again, &err), VD_LOG_OK);
  vd_decision_log_close(log);
  /* every acknowledged row is stored, but those retention deleted */
  ck_assert_int_eq(count_rows(f.path), stored - (int64_t)deleted + 1);
  fixture_done(&f);
}
END_TEST

/* Rows a close could not index (SQLite locked elsewhere) stay in the journal and are indexed at
 * the next open. */
START_TEST(rows_left_in_the_journal_are_indexed_at_the_next_open) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path, .busy_timeout_ms = 20});
  sqlite3 *lock = hold_write_lock(f.path);
  vd_error err = {0};
  for (int i = 0; i < 3; i++) {
    char id[32];
    snprintf(id, sizeof id, "left-%d", i);
    ck_assert_int_eq(append_one(log, id, "promotions", "c9", 0, i, &err), VD_LOG_OK);
  }
  vd_decision_log_close(log); /* its last commit fails: the rows stay journaled */
  release_write_lock(lock);
  ck_assert_int_eq(count_rows(f.path), 0);
  log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.replayed, 3);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "left-2", &trace, &err), VD_LOG_OK);
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "n")), 2);
  json_decref(trace);
  vd_decision_log_close(log);
  ck_assert_int_eq(count_rows(f.path), 3);
  char journal[160];
  snprintf(journal, sizeof journal, "%s.journal-0", f.path);
  ck_assert_int_ne(access(journal, F_OK), 0); /* all indexed: a clean close removes it */
  fixture_done(&f);
}
END_TEST

/* A tool's log (shared_reader) beside a running server reads what the server indexed and cannot
 * append; a second server's log waits busy_timeout_ms for the journal, then fails, naming it. */
START_TEST(a_second_opener_reads_only_or_fails) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *owner = open_log(&(vd_decision_log_config){.path = f.path});
  vd_error err = {0};
  ck_assert_int_eq(append_one(owner, "mine", "promotions", NULL, 0, 7, &err), VD_LOG_OK);
  ck_assert(vd_decision_log_flush(owner, &err));
  vd_decision_log *reader =
      open_log(&(vd_decision_log_config){.path = f.path, .shared_reader = true});
  ck_assert_int_eq(append_one(reader, "theirs", "promotions", NULL, 0, 1, &err), VD_LOG_FAILED);
  ck_assert_ptr_nonnull(strstr(err.message, "another process owns it"));
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(reader, "mine", &trace, &err), VD_LOG_OK);
  json_decref(trace);
  vd_decision_log_close(reader);
  uint64_t start = vd_monotonic_ns();
  ck_assert_ptr_null(vd_decision_log_open(
      &(vd_decision_log_config){.path = f.path, .busy_timeout_ms = 100}, &err));
  ck_assert_uint_ge(vd_monotonic_ns() - start, 90000000); /* it waited */
  ck_assert_msg(strstr(err.message, "journal") && strstr(err.message, "in use by another process"),
                "%s", err.message);
  vd_decision_log_close(owner);
  fixture_done(&f);
}
END_TEST

/* A tool's log that finds the journal free indexes what it holds and lets it go at once: a server
 * started while the tool runs gets the journal (it waited forever for it before, answering 503
 * to every decision). */
START_TEST(a_tool_indexes_the_journal_and_lets_it_go) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path, .busy_timeout_ms = 20});
  sqlite3 *lock = hold_write_lock(f.path);
  vd_error err = {0};
  ck_assert_int_eq(append_one(log, "kept", "promotions", NULL, 0, 1, &err), VD_LOG_OK);
  vd_decision_log_close(log); /* the row stays journaled */
  release_write_lock(lock);
  vd_decision_log *tool =
      open_log(&(vd_decision_log_config){.path = f.path, .shared_reader = true});
  ck_assert_int_eq(count_rows(f.path), 1); /* indexed at open */
  vd_decision_log *server = open_log(&(vd_decision_log_config){.path = f.path});
  ck_assert_int_eq(append_one(server, "new", "promotions", NULL, 0, 2, &err), VD_LOG_OK);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(tool, "kept", &trace, &err), VD_LOG_OK);
  json_decref(trace);
  vd_decision_log_close(server);
  vd_decision_log_close(tool);
  ck_assert_int_eq(count_rows(f.path), 2);
  fixture_done(&f);
}
END_TEST

/* Rows in the journal older than retention_days are not indexed again at open: retention
 * deleted them (a crash after that must not bring them back) or would at once. */
START_TEST(rows_past_retention_are_not_indexed_again) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path, .busy_timeout_ms = 20});
  sqlite3 *lock = hold_write_lock(f.path);
  vd_error err = {0};
  int64_t old = vd_wall_us() - 3 * INT64_C(86400000000);
  ck_assert_int_eq(append_one(log, "old", "promotions", NULL, old, 1, &err), VD_LOG_OK);
  ck_assert_int_eq(append_one(log, "recent", "promotions", NULL, 0, 2, &err), VD_LOG_OK);
  vd_decision_log_close(log);
  release_write_lock(lock);
  log = open_log(&(vd_decision_log_config){.path = f.path, .retention_days = 1});
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.replayed, 1);
  ck_assert_uint_eq(s.replay_expired, 1);
  json_t *trace = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, "old", &trace, &err), VD_LOG_NOT_FOUND);
  ck_assert_int_eq(vd_decision_log_get(log, "recent", &trace, &err), VD_LOG_OK);
  json_decref(trace);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* A journal frame with a good checksum that does not read as a row (another version's format)
 * neither stops the open nor is dropped: it is set aside, as it was, and counted. */
START_TEST(an_unreadable_row_is_set_aside) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_decision_log_close(log);
  vd_journal *j = vd_journal_open(f.path, &(vd_journal_options){0}, NULL, NULL, NULL, NULL);
  ck_assert_ptr_nonnull(j);
  ck_assert_uint_gt(vd_journal_append(j, "\x09future row", 11, NULL), 0);
  vd_journal_close(j);
  vd_error err = {0};
  log = vd_decision_log_open(&(vd_decision_log_config){.path = f.path}, &err);
  ck_assert_msg(log != NULL, "%s", err.message);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.journal_unreadable, 1);
  vd_decision_log_close(log);
  char aside[200];
  snprintf(aside, sizeof aside, "%s.journal-unreadable", f.path);
  struct stat sb;
  ck_assert_int_eq(stat(aside, &sb), 0);
  ck_assert_int_eq(sb.st_size, 12 + 11); /* position, length, the payload as it was */
  fixture_done(&f);
}
END_TEST

/* Opening in a folder the process may not write is an error with the path, not a crash. Root
 * ignores permissions, so the check runs in a child that drops to nobody. */
static void expect_open_fails_unprivileged(const char *path, const char *dir) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && setuid(65534) != 0) _exit(3);
    vd_error err = {0};
    vd_decision_log *log = vd_decision_log_open(&(vd_decision_log_config){.path = path}, &err);
    if (log) _exit(1);
    if (!strstr(err.message, dir)) _exit(2);
    fprintf(stderr, "refused as expected: %s\n", err.message);
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

START_TEST(a_read_only_folder_is_an_error) {
  fixture f;
  fixture_init(&f);
  ck_assert_int_eq(chmod(f.dir, 0555), 0);
  expect_open_fails_unprivileged(f.path, f.dir); /* no database yet */
  ck_assert_int_eq(chmod(f.dir, 0755), 0);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  ck_assert_int_eq(append_one(log, "a", "promotions", NULL, 0, 0, NULL), VD_LOG_OK);
  vd_decision_log_close(log);
  ck_assert_int_eq(chmod(f.dir, 0555), 0);
  ck_assert_int_eq(chmod(f.path, 0444), 0);
  expect_open_fails_unprivileged(f.path, f.dir); /* an existing database, read-only */
  fixture_done(&f);
}
END_TEST

START_TEST(a_missing_folder_is_an_error) {
  vd_error err = {0};
  vd_decision_log *log =
      vd_decision_log_open(&(vd_decision_log_config){.path = "/nonexistent-vd/decisions.db"}, &err);
  ck_assert_ptr_null(log);
  ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-vd/decisions.db"));
}
END_TEST

/* Pages through a query, collecting the "n" of every trace; `between` runs after each page. */
static json_t *collect_pages(vd_decision_log *log, vd_decision_query q, void (*between)(void *),
                             void *ctx) {
  json_t *all = json_array();
  char *cursor = NULL;
  int pages = 0;
  do {
    q.cursor = cursor;
    json_t *traces = NULL;
    char *next = NULL;
    vd_error err = {0};
    ck_assert_msg(vd_decision_log_list(log, &q, &traces, &next, &err), "%s", err.message);
    ck_assert_uint_le(json_array_size(traces), q.limit);
    if (next) ck_assert_uint_eq(json_array_size(traces), q.limit);
    size_t i;
    json_t *t;
    json_array_foreach(traces, i, t) json_array_append(all, json_object_get(t, "n"));
    json_decref(traces);
    free(cursor);
    cursor = next;
    if (between) between(ctx);
    ck_assert_int_lt(++pages, 10000);
  } while (cursor);
  return all;
}

typedef struct inserter {
  vd_decision_log *log;
  int next_n;
  int64_t ts_us;
} inserter;

/* A concurrent writer: one new decision for subject "a" after every page, later than all. */
static void insert_later(void *arg) {
  inserter *ins = arg;
  char id[32];
  snprintf(id, sizeof id, "new-%d", ins->next_n);
  ck_assert_int_eq(append_one(ins->log, id, "promotions", "a", ins->ts_us++, ins->next_n, NULL),
                   VD_LOG_OK);
  ins->next_n++;
}

/* The text listing is the same page as the parsed one, without parsing: the stored texts joined
 * into one JSON array, with the same next cursor. */
START_TEST(text_listing_is_the_parsed_listing) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  for (int i = 0; i < 7; i++) {
    char id[32];
    snprintf(id, sizeof id, "id-%d", i);
    ck_assert_int_eq(append_one(log, id, "promotions", i % 2 ? "alice" : "bob", 1000 + i, i, NULL),
                     VD_LOG_OK);
  }
  vd_decision_query q = {.subject_id = "alice", .limit = 2};
  for (int page = 0; page < 3; page++) {
    json_t *parsed = NULL;
    char *next_parsed = NULL, *next_text = NULL;
    ck_assert(vd_decision_log_list(log, &q, &parsed, &next_parsed, NULL));
    vd_buf text = {0};
    ck_assert(vd_decision_log_list_text(log, &q, &text, &next_text, NULL));
    json_t *reparsed = json_loadb(text.data, text.len, 0, NULL);
    ck_assert_ptr_nonnull(reparsed);
    ck_assert(json_equal(parsed, reparsed));
    ck_assert_uint_eq(json_array_size(parsed), page < 1 ? 2 : page == 1 ? 1 : 0);
    if (next_parsed)
      ck_assert_str_eq(next_parsed, next_text);
    else
      ck_assert_ptr_null(next_text);
    json_decref(parsed);
    json_decref(reparsed);
    vd_buf_free(&text);
    free(next_text);
    if (page == 0) {
      static char cursor[256];
      ck_assert_ptr_nonnull(next_parsed);
      snprintf(cursor, sizeof cursor, "%s", next_parsed);
      q.cursor = cursor;
    } else {
      q.subject_id = "nobody";
    }
    free(next_parsed);
  }
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(cursor_pagination_is_exact_and_stable) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  enum { ROWS = 300 };
  /* three decisions share each timestamp, so the cursor must break ties by id */
  for (int i = 0; i < ROWS; i++) {
    char id[32];
    snprintf(id, sizeof id, "r-%03d", i);
    const char *subject = i % 2 ? "b" : "a";
    const char *kind = i % 3 ? "promotions" : "triage";
    ck_assert_int_eq(append_one(log, id, kind, subject, 1000000 + i / 3, i, NULL), VD_LOG_OK);
  }
  json_t *a = collect_pages(log, (vd_decision_query){.subject_id = "a", .limit = 7}, NULL, NULL);
  ck_assert_uint_eq(json_array_size(a), ROWS / 2);
  for (size_t i = 0; i < json_array_size(a); i++)
    ck_assert_int_eq(json_integer_value(json_array_get(a, i)), (json_int_t)(2 * i));
  json_decref(a);

  /* kind and time range: [1000010, 1000020) holds rows 30..59; triage are multiples of 3 */
  json_t *t = collect_pages(log,
                            (vd_decision_query){.kind = "triage",
                                                .has_since = true,
                                                .since_us = 1000010,
                                                .has_until = true,
                                                .until_us = 1000020,
                                                .limit = 4},
                            NULL, NULL);
  ck_assert_uint_eq(json_array_size(t), 10);
  for (size_t i = 0; i < 10; i++)
    ck_assert_int_eq(json_integer_value(json_array_get(t, i)), (json_int_t)(30 + 3 * i));
  json_decref(t);

  /* subject and kind together: the even rows that are multiples of 3 */
  json_t *sk = collect_pages(
      log, (vd_decision_query){.subject_id = "a", .kind = "triage", .limit = 9}, NULL, NULL);
  ck_assert_uint_eq(json_array_size(sk), ROWS / 6);
  for (size_t i = 0; i < ROWS / 6; i++)
    ck_assert_int_eq(json_integer_value(json_array_get(sk, i)), (json_int_t)(6 * i));
  json_decref(sk);

  /* inserts while paging: every old row once, in order, then the new ones */
  inserter ins = {log, 1000, 2000000};
  json_t *c =
      collect_pages(log, (vd_decision_query){.subject_id = "a", .limit = 10}, insert_later, &ins);
  size_t total = json_array_size(c);
  ck_assert_uint_ge(total, ROWS / 2 + 15);
  for (size_t i = 0; i < ROWS / 2; i++)
    ck_assert_int_eq(json_integer_value(json_array_get(c, i)), (json_int_t)(2 * i));
  for (size_t i = ROWS / 2; i < total; i++)
    ck_assert_int_eq(json_integer_value(json_array_get(c, i)), (json_int_t)(1000 + i - ROWS / 2));
  json_decref(c);

  /* an exactly full last page hands out no cursor: one row more is read to know */
  json_t *traces = NULL;
  char *next = NULL;
  vd_decision_query q = {.subject_id = "b", .limit = ROWS / 2};
  ck_assert(vd_decision_log_list(log, &q, &traces, &next, NULL));
  ck_assert_uint_eq(json_array_size(traces), ROWS / 2);
  ck_assert_ptr_null(next); /* no more rows: no cursor */
  json_decref(traces);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(bad_cursor_and_limit_are_field_errors) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  json_t *traces = NULL;
  char *next = NULL;
  vd_error err = {0};
  vd_decision_query q = {.cursor = "not-a-cursor"};
  ck_assert(!vd_decision_log_list(log, &q, &traces, &next, &err));
  ck_assert_str_eq(err.field, "cursor");
  q = (vd_decision_query){.cursor = "00000000000f4240"}; /* timestamp without id */
  ck_assert(!vd_decision_log_list(log, &q, &traces, &next, &err));
  ck_assert_str_eq(err.field, "cursor");
  q = (vd_decision_query){.limit = VD_DECISION_LIST_MAX + 1};
  ck_assert(!vd_decision_log_list(log, &q, &traces, &next, &err));
  ck_assert_str_eq(err.field, "limit");
  ck_assert_ptr_null(traces);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

typedef struct visits {
  json_int_t seen[64];
  size_t count, stop_after;
} visits;

static bool note_visit(void *ctx, const json_t *trace) {
  visits *v = ctx;
  v->seen[v->count++] = json_integer_value(json_object_get(trace, "n"));
  return v->stop_after == 0 || v->count < v->stop_after;
}

START_TEST(foreach_visits_every_matching_decision_across_pages) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  int64_t t0 = INT64_C(1764000000000000);
  for (int i = 0; i < 25; i++) {
    char id[40];
    snprintf(id, sizeof id, "01a23c2a-7289-7441-81f8-%012d", i);
    vd_error err = {0};
    ck_assert_int_eq(append_one(log, id, i % 2 ? "triage" : "promotions", "s", t0 + i, i, &err),
                     VD_LOG_OK);
  }
  /* pages of 4: every row in [t0 + 3, t0 + 21), oldest first */
  visits v = {0};
  vd_error err = {0};
  vd_decision_query q = {
      .has_since = true, .since_us = t0 + 3, .has_until = true, .until_us = t0 + 21, .limit = 4};
  ck_assert_msg(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err), "%s", err.message);
  ck_assert_uint_eq(v.count, 18);
  for (size_t i = 0; i < v.count; i++) ck_assert_int_eq(v.seen[i], (json_int_t)(3 + i));
  /* a kind, the default page size */
  v = (visits){0};
  q = (vd_decision_query){.kind = "triage"};
  ck_assert(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err));
  ck_assert_uint_eq(v.count, 12);
  ck_assert_int_eq(v.seen[11], 23);
  /* the visitor stops it */
  v = (visits){.stop_after = 7};
  q = (vd_decision_query){.limit = 3};
  ck_assert(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err));
  ck_assert_uint_eq(v.count, 7);
  /* a bad page size is the list's error */
  v = (visits){0};
  q = (vd_decision_query){.limit = VD_DECISION_LIST_MAX + 1};
  ck_assert(!vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err));
  ck_assert_str_eq(err.field, "limit");
  ck_assert_uint_eq(v.count, 0);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* A bound of 0 (1970-01-01T00:00:00Z) is a bound like any other, not "none". */
START_TEST(bounds_at_the_epoch_are_honoured) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  const int64_t ts[3] = {-2, -1, 1}; /* (a record's 0 means "now") */
  for (int i = 0; i < 3; i++) {
    char id[40];
    snprintf(id, sizeof id, "01a23c2a-7289-7441-81f8-%012d", i);
    ck_assert_int_eq(append_one(log, id, "promotions", "s", ts[i], i, NULL), VD_LOG_OK);
  }
  visits v = {0};
  vd_error err = {0};
  vd_decision_query q = {.has_until = true, .until_us = 0};
  ck_assert_msg(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err), "%s", err.message);
  ck_assert_uint_eq(v.count, 2); /* the two before the epoch */
  ck_assert_int_eq(v.seen[1], 1);
  v = (visits){0};
  q = (vd_decision_query){.has_since = true, .since_us = 0};
  ck_assert(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err));
  ck_assert_uint_eq(v.count, 1);
  ck_assert_int_eq(v.seen[0], 2);
  v = (visits){0};
  q = (vd_decision_query){0}; /* no bounds: all three */
  ck_assert(vd_decision_log_foreach(log, &q, note_visit, NULL, &v, &err));
  ck_assert_uint_eq(v.count, 3);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

START_TEST(retention_deletes_old_decisions_periodically) {
  fixture f;
  fixture_init(&f);
  int64_t now = vd_wall_us();
  int64_t day = INT64_C(86400000000);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  for (int i = 0; i < 2500; i++) { /* more than one delete chunk */
    char id[32];
    snprintf(id, sizeof id, "old-%d", i);
    ck_assert_int_eq(append_one(log, id, "promotions", "s", now - 10 * day + i, i, NULL),
                     VD_LOG_OK);
  }
  ck_assert_int_eq(append_one(log, "recent", "promotions", "s", now - 2 * day, 0, NULL), VD_LOG_OK);
  vd_decision_log_close(log);
  log = open_log(
      &(vd_decision_log_config){.path = f.path, .retention_days = 5, .retention_interval_ms = 20});
  json_t *trace = NULL;
  vd_log_status st = VD_LOG_OK;
  for (int i = 0; i < 3000 && st == VD_LOG_OK; i++) {
    st = vd_decision_log_get(log, "old-2499", &trace, NULL);
    json_decref(trace);
    if (st == VD_LOG_OK) sleep_ms(1);
  }
  ck_assert_int_eq(st, VD_LOG_NOT_FOUND);
  ck_assert_int_eq(vd_decision_log_get(log, "old-0", &trace, NULL), VD_LOG_NOT_FOUND);
  ck_assert_int_eq(vd_decision_log_get(log, "recent", &trace, NULL), VD_LOG_OK);
  json_decref(trace);
  /* The rows are gone once the delete commits; the counter follows just after (slow under
   * ThreadSanitizer): wait for it. */
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  for (int i = 0; i < 3000 && s.purged < 2500; i++) {
    sleep_ms(1);
    vd_decision_log_stats_get(log, &s);
  }
  ck_assert_uint_eq(s.purged, 2500);
  /* appends go on while retention runs */
  ck_assert_int_eq(append_one(log, "new", "promotions", "s", 0, 0, NULL), VD_LOG_OK);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

static int64_t count_rows(const char *path) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM decisions", -1, &st, NULL),
                   SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void expect_integrity_ok(const char *path) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

START_TEST(close_commits_everything_and_folds_the_wal) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  enum { THREADS = 4, EACH = 100 };
  pthread_t threads[THREADS];
  appender a[THREADS];
  for (int t = 0; t < THREADS; t++) {
    a[t] = (appender){.log = log, .gen = gen, .count = EACH};
    pthread_create(&threads[t], NULL, append_many, &a[t]);
  }
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  vd_decision_log_close(log);
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", f.path);
  struct stat sb;
  ck_assert(stat(wal, &sb) != 0 || sb.st_size == 0);
  ck_assert_int_eq(count_rows(f.path), THREADS * EACH);
  expect_integrity_ok(f.path);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

typedef struct big_appender {
  vd_decision_log *log;
  vd_uuid_gen *gen;
  int count;
  const char *trace;
  bool ok;
} big_appender;

static void *append_big(void *arg) {
  big_appender *a = arg;
  a->ok = true;
  for (int i = 0; i < a->count; i++) {
    char id[VD_UUID_STRING_SIZE];
    vd_uuid_v7(a->gen, id, NULL);
    vd_decision_record r = {.id = id, .kind = "promotions", .trace_json = a->trace};
    if (vd_decision_log_append(a->log, &r, NULL) != VD_LOG_OK) a->ok = false;
  }
  return NULL;
}

START_TEST(the_wal_stays_bounded_under_continuous_writes) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path,
                                                            .overload = VD_LOG_OVERLOAD_WAIT,
                                                            .max_wait_ms = 60000,
                                                            .uncompressed = true});
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  static char trace[8192];
  memset(trace, ' ', sizeof trace - 1);
  trace[0] = '{';
  trace[sizeof trace - 2] = '}';
  enum { THREADS = 8, EACH = 600 }; /* about 40 MB of traces, written without a pause */
  pthread_t threads[THREADS];
  big_appender a[THREADS];
  for (int t = 0; t < THREADS; t++) {
    a[t] = (big_appender){log, gen, EACH, trace, false};
    pthread_create(&threads[t], NULL, append_big, &a[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert(a[t].ok);
  }
  ck_assert(vd_decision_log_flush(log, NULL));
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", f.path);
  struct stat sb;
  ck_assert_int_eq(stat(wal, &sb), 0);
  /* the checkpointer starts the WAL over from 6,000 pages on, and commits wait for it at 8,000
   * (33 MB with the frame headers): the WAL never holds much more than that */
  ck_assert_msg(sb.st_size < 35 * 1024 * 1024, "WAL grew to %lld bytes", (long long)sb.st_size);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_gt(s.wal_restarts, 0);
  /* and the database file grows in 4 MiB steps (fewer journal commits in its syncs); a
   * checkpoint still copying may be in the middle of a step, which SQLite takes a page at a
   * time where it cannot preallocate: the size is seen between its checkpoints */
  bool stepped = false;
  for (int i = 0; i < 200 && !stepped; i++) {
    ck_assert_int_eq(stat(f.path, &sb), 0);
    stepped = sb.st_size % (4 << 20) == 0;
    if (!stepped) sleep_ms(5);
  }
  ck_assert_msg(stepped, "database of %lld bytes", (long long)sb.st_size);
  vd_decision_log_close(log);
  ck_assert_int_eq(count_rows(f.path), THREADS * EACH);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* A VFS in front of the default one that counts writes and syncs of the main database file (not
 * its -wal or -shm) — in WAL mode only a checkpoint writes there — split by whether the thread
 * doing them is inside vd_decision_log_append; and refuses the next busy_shared_locks shared
 * locks of it, as a connection holding a pending lock would. */
typedef struct counting_file {
  sqlite3_file base;
  sqlite3_file *real; /* the default VFS's file, right after this struct */
  bool main_db;
} counting_file;

static _Thread_local bool appending;
static atomic_int db_io_appending, db_io_elsewhere;
static atomic_int busy_shared_locks; /* the next shared locks of the database refused */
static atomic_int sync_delay_ms;     /* every sync through the VFS takes this long: a slow disk */
static sqlite3_vfs counting_vfs;
static sqlite3_io_methods counting_methods;

static void count_db_io(counting_file *f) {
  if (f->main_db) atomic_fetch_add(appending ? &db_io_appending : &db_io_elsewhere, 1);
}
static sqlite3_file *real_of(sqlite3_file *f) { return ((counting_file *)f)->real; }
static int c_close(sqlite3_file *f) { return real_of(f)->pMethods->xClose(real_of(f)); }
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xRead(real_of(f), b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) {
  count_db_io((counting_file *)f);
  return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 n) {
  return real_of(f)->pMethods->xTruncate(real_of(f), n);
}
static int c_sync(sqlite3_file *f, int flags) {
  count_db_io((counting_file *)f);
  if (atomic_load(&sync_delay_ms)) sleep_ms(atomic_load(&sync_delay_ms));
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *n) {
  return real_of(f)->pMethods->xFileSize(real_of(f), n);
}
static int c_lock(sqlite3_file *f, int l) {
  if (l == SQLITE_LOCK_SHARED && ((counting_file *)f)->main_db) {
    int left = atomic_load(&busy_shared_locks);
    while (left > 0 && !atomic_compare_exchange_weak(&busy_shared_locks, &left, left - 1)) {
    }
    if (left > 0) return SQLITE_BUSY;
  }
  return real_of(f)->pMethods->xLock(real_of(f), l);
}
static int c_unlock(sqlite3_file *f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
static int c_reserved(sqlite3_file *f, int *r) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), r);
}
static int c_fcntl(sqlite3_file *f, int op, void *a) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, a);
}
static int c_sector(sqlite3_file *f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
static int c_device(sqlite3_file *f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int c_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p) {
  return real_of(f)->pMethods->xShmMap(real_of(f), i, sz, ext, p);
}
static int c_shm_lock(sqlite3_file *f, int o, int n, int fl) {
  return real_of(f)->pMethods->xShmLock(real_of(f), o, n, fl);
}
static void c_shm_barrier(sqlite3_file *f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
static int c_shm_unmap(sqlite3_file *f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

static int c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out) {
  sqlite3_vfs *real = vfs->pAppData;
  counting_file *f = (counting_file *)file;
  f->real = (sqlite3_file *)(f + 1);
  f->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  int rc = real->xOpen(real, name, f->real, flags, out);
  f->base.pMethods = f->real->pMethods ? &counting_methods : NULL;
  return rc;
}

/* Installs the counting VFS as the default (once; version 2 methods: no memory-mapped I/O). */
static void install_counting_vfs(void) {
  if (counting_vfs.zName) return;
  sqlite3_vfs *real = sqlite3_vfs_find(NULL);
  counting_vfs = *real;
  counting_vfs.zName = "counting";
  counting_vfs.pAppData = real;
  counting_vfs.szOsFile = (int)sizeof(counting_file) + real->szOsFile;
  counting_vfs.xOpen = c_open;
  counting_methods = (sqlite3_io_methods){.iVersion = 2,
                                          .xClose = c_close,
                                          .xRead = c_read,
                                          .xWrite = c_write,
                                          .xTruncate = c_truncate,
                                          .xSync = c_sync,
                                          .xFileSize = c_size,
                                          .xLock = c_lock,
                                          .xUnlock = c_unlock,
                                          .xCheckReservedLock = c_reserved,
                                          .xFileControl = c_fcntl,
                                          .xSectorSize = c_sector,
                                          .xDeviceCharacteristics = c_device,
                                          .xShmMap = c_shm_map,
                                          .xShmLock = c_shm_lock,
                                          .xShmBarrier = c_shm_barrier,
                                          .xShmUnmap = c_shm_unmap};
  ck_assert_int_eq(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static void *append_big_marked(void *arg) {
  appending = true;
  return append_big(arg);
}

/* A checkpoint's syncs took 5-17 ms when the committing thread ran it, and every commit queued
 * behind waited: checkpoints run on the log's own thread only, however much is written. */
START_TEST(no_checkpoint_runs_on_an_appending_thread) {
  install_counting_vfs();
  atomic_store(&db_io_appending, 0);
  atomic_store(&db_io_elsewhere, 0);
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path,
                                                            .overload = VD_LOG_OVERLOAD_WAIT,
                                                            .max_wait_ms = 60000,
                                                            .uncompressed = true});
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  static char trace[8192];
  memset(trace, ' ', sizeof trace - 1);
  trace[0] = '{';
  trace[sizeof trace - 2] = '}';
  enum { THREADS = 4, EACH = 1200 }; /* ~40 MB: more than one WAL restart */
  pthread_t threads[THREADS];
  big_appender a[THREADS];
  int before = atomic_load(&db_io_elsewhere);
  for (int t = 0; t < THREADS; t++) {
    a[t] = (big_appender){log, gen, EACH, trace, false};
    pthread_create(&threads[t], NULL, append_big_marked, &a[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert(a[t].ok);
  }
  ck_assert(vd_decision_log_flush(log, NULL));
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  int on_append = atomic_load(&db_io_appending), off_append = atomic_load(&db_io_elsewhere);
  ck_assert_msg(on_append == 0, "%d database writes or syncs on appending threads", on_append);
  ck_assert_int_gt(off_append, before); /* the checkpointer did copy */
  ck_assert_uint_gt(s.wal_restarts, 0);
  vd_decision_log_close(log);
  ck_assert_int_eq(count_rows(f.path), THREADS * EACH);
  expect_integrity_ok(f.path);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* A disk too slow for the appends: the checkpointer's catch-up passes take long (each syncs the
 * WAL), so the WAL would keep growing while they run; at 8,000 pages commits wait for its restart
 * instead, and the WAL stays bounded. */
START_TEST(the_wal_stays_bounded_on_a_slow_disk) {
  install_counting_vfs();
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path,
                                                            .overload = VD_LOG_OVERLOAD_WAIT,
                                                            .max_wait_ms = 60000,
                                                            .uncompressed = true});
  atomic_store(&sync_delay_ms, 150);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  static char trace[8192];
  memset(trace, ' ', sizeof trace - 1);
  trace[0] = '{';
  trace[sizeof trace - 2] = '}';
  enum { THREADS = 4, EACH = 1500 }; /* ~60 MB of traces */
  pthread_t threads[THREADS];
  big_appender a[THREADS];
  for (int t = 0; t < THREADS; t++) {
    a[t] = (big_appender){log, gen, EACH, trace, false};
    pthread_create(&threads[t], NULL, append_big, &a[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert(a[t].ok);
  }
  ck_assert(vd_decision_log_flush(log, NULL));
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", f.path);
  struct stat sb;
  ck_assert_int_eq(stat(wal, &sb), 0);
  ck_assert_msg(sb.st_size < 35 * 1024 * 1024, "WAL grew to %lld bytes", (long long)sb.st_size);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_gt(s.wal_restarts, 0);
  atomic_store(&sync_delay_ms, 0);
  vd_decision_log_close(log);
  ck_assert_int_eq(count_rows(f.path), THREADS * EACH);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* A reader connection opened while another connection briefly holds a lock that keeps it from its
 * shared lock must wait (busy timeout), not fail: its statements were prepared before the busy
 * timeout was set, and GET /v1/decisions/{id} answered 503 "cannot open a reader: database is
 * locked" (seen in CI right after LLM amendments). The VFS refuses the next shared locks. */
START_TEST(a_new_reader_waits_out_a_busy_database) {
  install_counting_vfs();
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_error err = {0};
  ck_assert_int_eq(append_one(log, "id-1", "promotions", "c1", 0, 1, &err), VD_LOG_OK);
  atomic_store(&busy_shared_locks, 3);
  json_t *trace = NULL;
  vd_log_status st = vd_decision_log_get(log, "id-1", &trace, &err);
  ck_assert_msg(st == VD_LOG_OK, "get: %s", err.message);
  ck_assert_int_eq(atomic_load(&busy_shared_locks), 0); /* the reader did meet them */
  json_decref(trace);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* A checkpoint pass costs the checkpointer a wake-up and a sync of the WAL: at a steady, moderate
 * rate (where it would be idle between two commits) it runs once per ~1000 pages written, not
 * after every commit once the WAL is 1000 pages long. */
START_TEST(the_checkpointer_runs_once_per_thousand_pages) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path,
                                                            .overload = VD_LOG_OVERLOAD_WAIT,
                                                            .max_wait_ms = 60000,
                                                            .uncompressed = true});
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  static char trace[8192];
  memset(trace, ' ', sizeof trace - 1);
  trace[0] = '{';
  trace[sizeof trace - 2] = '}';
  big_appender a = {log, gen, 1, trace, false};
  for (int i = 0; i < 1500; i++) { /* ~3 pages each: ~4,500 pages, several passes */
    append_big(&a);
    ck_assert(a.ok);
    sleep_ms(1);
  }
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_gt(s.checkpoint_passes, 0);
  ck_assert_uint_gt(s.batches, 4 * s.checkpoint_passes);
  ck_assert_msg(s.checkpoint_passes <= s.wal_frames / 500 + 2, "%llu checkpoints for %llu pages",
                (unsigned long long)s.checkpoint_passes, (unsigned long long)s.wal_frames);
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

START_TEST(fsync_durability_runs_synchronous_full) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log =
      open_log(&(vd_decision_log_config){.path = f.path, .durability = VD_DURABILITY_FSYNC});
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert(s.fsync);
  ck_assert_int_eq(append_one(log, "a", "promotions", NULL, 0, 0, NULL), VD_LOG_OK);
  vd_decision_log_close(log);
  log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_decision_log_stats_get(log, &s);
  ck_assert(!s.fsync);
  vd_decision_log_close(log);
  fixture_done(&f);
}
END_TEST

/* The child appends from 8 threads and reports every acknowledged id on a pipe; it never
 * returns (the parent kills it). */
typedef struct kill_worker {
  vd_decision_log *log;
  vd_uuid_gen *gen;
  int fd;
} kill_worker;

static void *append_and_report(void *arg) {
  kill_worker *w = arg;
  for (int i = 0;; i++) {
    char id[VD_UUID_STRING_SIZE];
    vd_uuid_v7(w->gen, id, NULL);
    if (append_one(w->log, id, "promotions", "k", 0, i, NULL) != VD_LOG_OK) continue;
    id[36] = '\n'; /* 37-byte lines: atomic pipe writes */
    if (write(w->fd, id, 37) != 37) _exit(4);
  }
  return NULL;
}

static void kill_test(vd_durability durability, int wanted) {
  fixture f;
  fixture_init(&f);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    vd_decision_log *log = vd_decision_log_open(
        &(vd_decision_log_config){.path = f.path, .durability = durability}, NULL);
    if (!log) _exit(5);
    vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    kill_worker w = {log, gen, fds[1]};
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, append_and_report, &w);
    for (;;) pause();
  }
  close(fds[1]);
  FILE *in = fdopen(fds[0], "r");
  size_t capacity = (size_t)wanted * 2 + 10000;
  char(*ids)[40] = calloc(capacity, 40);
  size_t n = 0;
  while (n < (size_t)wanted && fgets(ids[n], 40, in)) n++;
  ck_assert_uint_eq(n, (size_t)wanted);
  kill(pid, SIGKILL); /* mid-stream: appends are in flight in every thread */
  int status = 0;
  waitpid(pid, &status, 0);
  ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  while (n < capacity && fgets(ids[n], 40, in)) n++; /* acknowledged before the kill */
  fclose(in);

  vd_decision_log *log = open_log(&(vd_decision_log_config){.path = f.path});
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_gt(s.replayed, 0); /* the journal of the killed process was read */
  for (size_t i = 0; i < n; i++) {
    ids[i][36] = '\0';
    json_t *trace = NULL;
    vd_error err = {0};
    ck_assert_msg(vd_decision_log_get(log, ids[i], &trace, &err) == VD_LOG_OK,
                  "acknowledged decision %s (#%zu of %zu) lost: %s", ids[i], i, n, err.message);
    ck_assert_str_eq(json_string_value(json_object_get(trace, "decision_id")), ids[i]);
    json_decref(trace);
  }
  vd_decision_log_close(log);
  expect_integrity_ok(f.path);
  fprintf(stderr, "kill test (%s): %zu acknowledged decisions all readable after SIGKILL\n",
          durability == VD_DURABILITY_FSYNC ? "fsync" : "normal", n);
  free(ids);
  fixture_done(&f);
}

START_TEST(acknowledged_decisions_survive_sigkill) {
  kill_test(VD_DURABILITY_NORMAL, under_sanitizer() ? 1000 : 20000);
}
END_TEST

START_TEST(acknowledged_decisions_survive_sigkill_fsync) {
  kill_test(VD_DURABILITY_FSYNC, under_sanitizer() ? 300 : 3000);
}
END_TEST

int main(void) {
  Suite *s = suite_create("decision_log");
  TCase *tc = tcase_create("decision_log");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, append_then_get_returns_the_trace);
  tcase_add_test(tc, amendments_are_appended_and_returned_with_the_trace);
  tcase_add_test(tc, invalid_records_are_refused_and_duplicates_counted);
  tcase_add_test(tc, appends_are_acknowledged_before_indexing_and_indexed_in_batches);
  tcase_add_test(tc, a_full_queue_is_a_distinct_overload_error);
  tcase_add_test(tc, wait_policy_waits_for_space_then_gives_up);
  tcase_add_test(tc, a_lock_timeout_fails_indexing_not_the_append);
  tcase_add_test(tc, a_full_disk_fails_appends_and_retention_recovers);
  tcase_add_test(tc, rows_left_in_the_journal_are_indexed_at_the_next_open);
  tcase_add_test(tc, a_second_opener_reads_only_or_fails);
  tcase_add_test(tc, a_tool_indexes_the_journal_and_lets_it_go);
  tcase_add_test(tc, rows_past_retention_are_not_indexed_again);
  tcase_add_test(tc, an_unreadable_row_is_set_aside);
  tcase_add_test(tc, a_read_only_folder_is_an_error);
  tcase_add_test(tc, a_missing_folder_is_an_error);
  tcase_add_test(tc, cursor_pagination_is_exact_and_stable);
  tcase_add_test(tc, text_listing_is_the_parsed_listing);
  tcase_add_test(tc, bad_cursor_and_limit_are_field_errors);
  tcase_add_test(tc, foreach_visits_every_matching_decision_across_pages);
  tcase_add_test(tc, bounds_at_the_epoch_are_honoured);
  tcase_add_test(tc, retention_deletes_old_decisions_periodically);
  tcase_add_test(tc, close_commits_everything_and_folds_the_wal);
  tcase_add_test(tc, the_wal_stays_bounded_under_continuous_writes);
  tcase_add_test(tc, no_checkpoint_runs_on_an_appending_thread);
  tcase_add_test(tc, a_new_reader_waits_out_a_busy_database);
  tcase_add_test(tc, the_checkpointer_runs_once_per_thousand_pages);
  tcase_add_test(tc, the_wal_stays_bounded_on_a_slow_disk);
  tcase_add_test(tc, fsync_durability_runs_synchronous_full);
  tcase_add_test(tc, acknowledged_decisions_survive_sigkill);
  tcase_add_test(tc, acknowledged_decisions_survive_sigkill_fsync);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
