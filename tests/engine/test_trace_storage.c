/* How the decision log stores traces (vd_trace_blob): LZ4 blobs read back as the JSON text that
 * was appended, through get and both listings; rows of older versions (TEXT) read as before,
 * mixed with new ones; a damaged blob is an error naming the decision; a trace that does not
 * shrink is stored as it is; `decision_log: compress: false` stores text; the write-volume stats.
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "vd_buf.h"
#include "vd_config.h"
#include "vd_decision_log.h"
#include "vd_json_write.h"
#include "vd_le.h"
#include "vd_metrics.h"
#include "vd_test.h"
#include "vd_trace_blob.h"
#include "vd_uuid.h"

typedef struct fixture {
  char dir[64];
  char path[128];
} fixture;

static void fixture_init(fixture *f) {
  snprintf(f->dir, sizeof f->dir, "/tmp/vd-tstore-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/decisions.db", f->dir);
}

static void fixture_done(fixture *f) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  ck_assert_int_eq(system(cmd), 0);
}

static vd_decision_log *open_log(const char *path, bool uncompressed) {
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(
      &(vd_decision_log_config){.path = path, .uncompressed = uncompressed}, &err);
  ck_assert_msg(log != NULL, "open: %s", err.message);
  return log;
}

/* A real promotions trace (the bench's sample), with the value of "subject" id made unique by n
 * so that rows differ. Caller frees. */
static char *real_trace(int n) {
  vd_error err = {0};
  size_t size = 0;
  char *text =
      vd_read_file(VERDICT_SOURCE_DIR "/bench/data/promotions_trace.json", 1 << 20, &size, &err);
  ck_assert_msg(text != NULL, "%s", err.message);
  while (size && text[size - 1] == '\n') text[--size] = '\0';
  char *at = strstr(text, "\"c-1001\"");
  ck_assert_ptr_nonnull(at);
  char id[8];
  snprintf(id, sizeof id, "c-%04d", n % 10000);
  memcpy(at + 1, id, 6);
  return text;
}

static void append(vd_decision_log *log, const char *id, int64_t ts_us, const char *trace) {
  vd_error err = {0};
  vd_decision_record r = {.id = id,
                          .kind = "promotions",
                          .subject_id = "c-1",
                          .timestamp_us = ts_us,
                          .trace_json = trace};
  ck_assert_msg(vd_decision_log_append(log, &r, &err) == VD_LOG_OK, "append: %s", err.message);
  ck_assert_msg(vd_decision_log_flush(log, &err), "flush: %s", err.message); /* in the file now */
}

/* typeof(trace) and length(trace) of a row, read with SQLite directly. */
static void stored_form(const char *path, const char *id, char *type, size_t type_size,
                        int64_t *bytes) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "SELECT typeof(trace), length(CAST(trace AS BLOB)) FROM "
                                      "decisions WHERE id = ?1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  snprintf(type, type_size, "%s", (const char *)sqlite3_column_text(st, 0));
  *bytes = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void assert_get_is(vd_decision_log *log, const char *id, const char *text) {
  vd_error err = {0};
  json_t *got = NULL;
  ck_assert_msg(vd_decision_log_get(log, id, &got, &err) == VD_LOG_OK, "get %s: %s", id,
                err.message);
  json_t *want = json_loads(text, 0, NULL);
  ck_assert_ptr_nonnull(want);
  ck_assert_msg(json_equal(got, want), "get %s returned another trace", id);
  json_decref(want);
  json_decref(got);
}

/* The text listing of subject c-1: the stored texts as a JSON array. */
static char *list_text(vd_decision_log *log, vd_error *err, bool *ok) {
  vd_buf out = {0};
  char *next = NULL;
  *ok = vd_decision_log_list_text(log, &(vd_decision_query){.subject_id = "c-1"}, &out, &next, err);
  free(next);
  return vd_buf_take(&out);
}

START_TEST(compressed_traces_round_trip_through_get_and_listings) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char ids[3][VD_UUID_STRING_SIZE];
  char *traces[3];
  vd_buf want = {0};
  vd_buf_puts(&want, "[");
  size_t json_bytes = 0;
  for (int i = 0; i < 3; i++) {
    vd_uuid_v7(gen, ids[i], NULL);
    traces[i] = real_trace(i);
    json_bytes += strlen(traces[i]);
    append(log, ids[i], 1000 + i, traces[i]);
    if (i) vd_buf_puts(&want, ",");
    vd_buf_puts(&want, traces[i]);
  }
  vd_buf_puts(&want, "]");
  for (int i = 0; i < 3; i++) {
    char type[16];
    int64_t bytes = 0;
    stored_form(f.path, ids[i], type, sizeof type, &bytes);
    ck_assert_str_eq(type, "blob");
    /* a real trace shrinks about 3x: it then fits one 4 KiB page with its row */
    ck_assert_int_lt(bytes * 2, (int64_t)strlen(traces[i]));
    assert_get_is(log, ids[i], traces[i]);
  }
  vd_error err = {0};
  bool ok = false;
  char *listed = list_text(log, &err, &ok);
  ck_assert_msg(ok, "%s", err.message);
  ck_assert_str_eq(listed, want.data); /* byte for byte what was appended */
  free(listed);
  json_t *page = NULL;
  char *next = NULL;
  ck_assert(
      vd_decision_log_list(log, &(vd_decision_query){.subject_id = "c-1"}, &page, &next, &err));
  json_t *whole = json_loads(want.data, 0, NULL);
  ck_assert(json_equal(page, whole));
  json_decref(whole);
  json_decref(page);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.compressed, 3);
  ck_assert_uint_eq(s.trace_bytes, json_bytes);
  ck_assert_uint_lt(s.stored_trace_bytes * 2, s.trace_bytes);
  /* three single-decision commits: at least the table leaf and an index leaf each */
  ck_assert_uint_ge(s.wal_frames, 6);
  ck_assert_uint_eq(s.wal_bytes, s.wal_frames * (4096 + 24));
  /* and in /metrics */
  vd_metrics *m = vd_metrics_new();
  vd_buf text = {0};
  vd_metrics_render(m, &s, &text);
  char line[128];
  snprintf(line, sizeof line, "verdict_decision_log_wal_frames_total %llu\n",
           (unsigned long long)s.wal_frames);
  ck_assert_ptr_nonnull(strstr(text.data, line));
  snprintf(line, sizeof line, "verdict_decision_log_trace_bytes_total{form=\"json\"} %zu\n",
           json_bytes);
  ck_assert_ptr_nonnull(strstr(text.data, line));
  snprintf(line, sizeof line, "verdict_decision_log_trace_bytes_total{form=\"stored\"} %llu\n",
           (unsigned long long)s.stored_trace_bytes);
  ck_assert_ptr_nonnull(strstr(text.data, line));
  vd_buf_free(&text);
  vd_metrics_free(m);
  vd_decision_log_close(log);
  for (int i = 0; i < 3; i++) free(traces[i]);
  vd_buf_free(&want);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* GET /v1/decisions/{id} serves the stored text (what the listing serves for the decision) when
 * there are no amendments, and the merged tree written out when there are. */
START_TEST(get_text_is_the_stored_text_or_the_amended_tree) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char id[VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, id, NULL);
  char *trace = real_trace(6);
  append(log, id, 1000, trace);
  vd_error err = {0};
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq(vd_decision_log_get_text(log, id, &text, &len, &err), VD_LOG_OK);
  ck_assert_uint_eq(len, strlen(trace));
  ck_assert_str_eq(text, trace);
  free(text);
  json_t *amendment = json_pack("{s:s, s:i}", "type", "test", "n", 1);
  ck_assert_int_eq(vd_decision_log_amend(log, id, amendment, &err), VD_LOG_OK);
  json_decref(amendment);
  json_t *tree = NULL;
  ck_assert_int_eq(vd_decision_log_get(log, id, &tree, &err), VD_LOG_OK);
  size_t want_len = 0;
  char *want = vd_json_dumps_shortest(tree, &want_len);
  json_decref(tree);
  ck_assert_int_eq(vd_decision_log_get_text(log, id, &text, &len, &err), VD_LOG_OK);
  ck_assert_str_eq(text, want);
  ck_assert_ptr_nonnull(strstr(text, "\"amendments\":[{\"n\":1,\"type\":\"test\",\"amended_at\""));
  free(text);
  free(want);
  ck_assert_int_eq(vd_decision_log_get_text(log, "no-such-id", &text, &len, &err),
                   VD_LOG_NOT_FOUND);
  ck_assert_ptr_null(text);
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  free(trace);
  fixture_done(&f);
}
END_TEST

/* A log written before compression holds TEXT rows; they read and list as they did, in order
 * with the compressed rows appended since. */
START_TEST(older_text_rows_read_and_list_among_new_ones) {
  fixture f;
  fixture_init(&f);
  vd_decision_log_close(open_log(f.path, false)); /* the schema */
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char old_id[VD_UUID_STRING_SIZE], new_ids[2][VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, old_id, NULL);
  char *old_trace = real_trace(7);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_open(f.path, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(db,
                                      "INSERT INTO decisions(id, kind, subject_id, ts_us, trace) "
                                      "VALUES (?1, 'promotions', 'c-1', 1500, ?2)",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, old_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, old_trace, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);

  vd_decision_log *log = open_log(f.path, false);
  char *t0 = real_trace(1), *t2 = real_trace(2);
  vd_uuid_v7(gen, new_ids[0], NULL);
  vd_uuid_v7(gen, new_ids[1], NULL);
  append(log, new_ids[0], 1000, t0); /* before the old row in time */
  append(log, new_ids[1], 2000, t2); /* after it */
  char type[16];
  int64_t bytes = 0;
  stored_form(f.path, old_id, type, sizeof type, &bytes);
  ck_assert_str_eq(type, "text");
  stored_form(f.path, new_ids[0], type, sizeof type, &bytes);
  ck_assert_str_eq(type, "blob");
  assert_get_is(log, old_id, old_trace);
  assert_get_is(log, new_ids[0], t0);
  vd_buf want = {0};
  vd_buf_printf(&want, "[%s,%s,%s]", t0, old_trace, t2);
  vd_error err = {0};
  bool ok = false;
  char *listed = list_text(log, &err, &ok);
  ck_assert_msg(ok, "%s", err.message);
  ck_assert_str_eq(listed, want.data);
  free(listed);
  vd_decision_log_close(log);
  vd_buf_free(&want);
  free(old_trace);
  free(t0);
  free(t2);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* Replaces a row's stored trace with the given bytes, as a damaged file would have them. */
/* Replaces decision id's stored trace in the file, as a BLOB or (as_text) as TEXT. */
static void overwrite_stored(const char *path, const char *id, const void *bytes, size_t len,
                             bool as_text) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(
      sqlite3_prepare_v2(db, "UPDATE decisions SET trace = ?1 WHERE id = ?2", -1, &st, NULL),
      SQLITE_OK);
  if (as_text)
    sqlite3_bind_text(st, 1, bytes, (int)len, SQLITE_STATIC);
  else
    sqlite3_bind_blob(st, 1, bytes, (int)len, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* The checksum the blob format carries (see vd_trace_blob.h), recomputed after an edit so the
 * decoder's other checks are reached. */
static void reseal(unsigned char *blob, size_t len) {
  uLong crc = crc32(0L, blob, 8);
  crc = crc32(crc, blob + VD_TRACE_BLOB_HEADER, (uInt)(len - VD_TRACE_BLOB_HEADER));
  vd_le_put32(blob + 8, (uint32_t)crc);
}

START_TEST(a_damaged_blob_is_an_error_naming_the_decision) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char id[VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, id, NULL);
  char *trace = real_trace(3);
  append(log, id, 1000, trace);
  void *good = NULL;
  size_t len = 0;
  ck_assert(vd_trace_blob_encode(trace, strlen(trace), &good, &len));
  unsigned char *bad = malloc(len);
  struct {
    const char *why;
    size_t len;
  } cases[] = {{"magic", len}, {"length", len}, {"truncated", len / 2},
               {"short", 5},   {"flip", len},   {"format", len}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(bad, good, len);
    const char *why = cases[c].why, *expect = NULL;
    if (strcmp(why, "magic") == 0) {
      bad[0] = '{';
      expect = "bad magic";
    } else if (strcmp(why, "length") == 0) {
      vd_le_put32(bad + 4, (uint32_t)strlen(trace) + 10); /* consistent checksum, wrong length */
      reseal(bad, len);
      expect = "not the recorded";
    } else if (strcmp(why, "truncated") == 0) {
      expect = "checksum mismatch";
    } else if (strcmp(why, "short") == 0) {
      expect = "truncated";
    } else if (strcmp(why, "flip") == 0) {
      bad[len - 20] ^= 0x04; /* one bit of the block: LZ4 alone might decode it */
      expect = "checksum mismatch";
    } else {
      bad[3] = 9;
      expect = "unknown format 9";
    }
    overwrite_stored(f.path, id, bad, cases[c].len, false);
    vd_error err = {0};
    json_t *got = NULL;
    ck_assert_int_eq(vd_decision_log_get(log, id, &got, &err), VD_LOG_FAILED);
    ck_assert_ptr_null(got);
    ck_assert_msg(strstr(err.message, id) && strstr(err.message, "cannot be read") &&
                      strstr(err.message, expect),
                  "%s: %s", why, err.message);
    bool ok = true;
    vd_error lerr = {0};
    char *listed = list_text(log, &lerr, &ok);
    free(listed);
    ck_assert(!ok);
    ck_assert_msg(strstr(lerr.message, id) && strstr(lerr.message, expect), "%s", lerr.message);
  }
  /* the intact blob reads again */
  overwrite_stored(f.path, id, good, len, false);
  assert_get_is(log, id, trace);
  vd_decision_log_close(log);
  free(bad);
  free(good);
  free(trace);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

/* Stored text that is not one JSON object — forged in the file, as TEXT or as a blob with a
 * valid checksum — is an error naming the decision, for get and for the listing, which would
 * otherwise copy it into its answer (invalid JSON, or extra records: {"a":1},{"b":2}). */
typedef struct walk {
  int visited, damaged;
  char damaged_id[VD_UUID_STRING_SIZE];
  char why[VD_ERROR_MESSAGE_MAX];
  bool stop_at_damage;
} walk;

static bool walk_visit(void *ctx, const json_t *trace) {
  (void)trace;
  ((walk *)ctx)->visited++;
  return true;
}

static bool walk_damaged(void *ctx, const char *id, const vd_error *why) {
  walk *w = ctx;
  w->damaged++;
  snprintf(w->damaged_id, sizeof w->damaged_id, "%s", id);
  snprintf(w->why, sizeof w->why, "%s", why->message);
  return !w->stop_at_damage;
}

/* One damaged row does not stop a walk over the log (verdict replay --since, shadow): it goes to
 * the damaged handler, naming the decision and why, and the others are visited; without a
 * handler the walk fails, naming it. */
START_TEST(foreach_hands_a_damaged_row_over_and_goes_on) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char ids[3][VD_UUID_STRING_SIZE];
  char *trace = real_trace(4);
  for (int i = 0; i < 3; i++) {
    vd_uuid_v7(gen, ids[i], NULL);
    append(log, ids[i], 1000 + i, trace);
  }
  overwrite_stored(f.path, ids[1], "VDZ", 3, false);
  vd_decision_query q = {.limit = 2}; /* the damaged row ends the first page */
  walk w = {0};
  vd_error err = {0};
  ck_assert_msg(vd_decision_log_foreach(log, &q, walk_visit, walk_damaged, &w, &err), "%s",
                err.message);
  ck_assert_int_eq(w.visited, 2);
  ck_assert_int_eq(w.damaged, 1);
  ck_assert_str_eq(w.damaged_id, ids[1]);
  ck_assert_msg(strstr(w.why, "cannot be read"), "%s", w.why);
  w = (walk){.stop_at_damage = true};
  ck_assert(vd_decision_log_foreach(log, &q, walk_visit, walk_damaged, &w, &err));
  ck_assert_int_eq(w.damaged, 1);
  ck_assert_int_eq(w.visited, 0); /* stopped while its page was read */
  w = (walk){0};
  ck_assert(!vd_decision_log_foreach(log, &q, walk_visit, NULL, &w, &err));
  ck_assert_ptr_nonnull(strstr(err.message, ids[1]));
  vd_decision_log_close(log);
  free(trace);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

START_TEST(stored_text_that_is_not_one_object_is_an_error) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char id[VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, id, NULL);
  char *trace = real_trace(4);
  append(log, id, 1000, trace);
  static const char *const forged[] = {"{\"a\":1},{\"b\":2}",   "not json at all", "",
                                       "{\"a\":\"x\\u0000y\"}", "[1,2]",           "{\"a\":1"};
  for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
    for (int as_blob = 0; as_blob < 2; as_blob++) {
      void *blob = NULL;
      size_t len = 0;
      if (as_blob) {
        /* vd_trace_blob_encode keeps what does not shrink as text: pad so it compresses */
        char padded[512];
        int n = snprintf(padded, sizeof padded, "%s%0400d", forged[i], 0);
        if (!vd_trace_blob_encode(padded, (size_t)n, &blob, &len)) continue;
        overwrite_stored(f.path, id, blob, len, false);
      } else {
        overwrite_stored(f.path, id, forged[i], strlen(forged[i]), true);
      }
      free(blob);
      vd_error err = {0};
      json_t *got = NULL;
      ck_assert_int_eq(vd_decision_log_get(log, id, &got, &err), VD_LOG_FAILED);
      ck_assert_msg(strstr(err.message, id) && strstr(err.message, "not one JSON object"),
                    "%zu/%d: %s", i, as_blob, err.message);
      bool ok = true;
      vd_error lerr = {0};
      char *listed = list_text(log, &lerr, &ok);
      ck_assert_msg(!ok, "%zu/%d: listed %s", i, as_blob, listed ? listed : "(null)");
      free(listed);
      ck_assert_msg(strstr(lerr.message, id) && strstr(lerr.message, "damaged"), "%s",
                    lerr.message);
    }
  }
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  free(trace);
  fixture_done(&f);
}
END_TEST

START_TEST(a_trace_that_does_not_shrink_is_stored_as_it_is) {
  fixture f;
  fixture_init(&f);
  vd_decision_log *log = open_log(f.path, false);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  /* random base64 text: no repeats for LZ4 to find */
  char trace[4200];
  unsigned seed = 1;
  int n = snprintf(trace, sizeof trace, "{\"noise\":\"");
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  while (n < 4096) trace[n++] = alphabet[rand_r(&seed) % 64];
  snprintf(trace + n, sizeof trace - (size_t)n, "\"}");
  void *blob = NULL;
  size_t blob_len = 0;
  ck_assert(!vd_trace_blob_encode(trace, strlen(trace), &blob, &blob_len));
  ck_assert_ptr_null(blob);
  const char *small = "{}"; /* shorter than the header */
  char ids[2][VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, ids[0], NULL);
  vd_uuid_v7(gen, ids[1], NULL);
  append(log, ids[0], 1000, trace);
  append(log, ids[1], 2000, small);
  char type[16];
  int64_t bytes = 0;
  stored_form(f.path, ids[0], type, sizeof type, &bytes);
  ck_assert_str_eq(type, "text");
  ck_assert_int_eq(bytes, (int64_t)strlen(trace));
  assert_get_is(log, ids[0], trace);
  assert_get_is(log, ids[1], small);
  vd_decision_log_stats s;
  vd_decision_log_stats_get(log, &s);
  ck_assert_uint_eq(s.compressed, 0);
  ck_assert_uint_eq(s.stored_trace_bytes, s.trace_bytes);
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

START_TEST(compress_false_stores_text_and_reads_blobs_still) {
  vd_error err = {0};
  vd_config *c =
      vd_config_load_string("data_dir: var\ndeployments: [p]\ndecision_log:\n  compress: false\n",
                            "t.yaml", "/etc", &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert(c->decision_log.uncompressed);
  vd_config_free(c);
  c = vd_config_load_string("data_dir: var\ndeployments: [p]\n", "t.yaml", "/etc", &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert(!c->decision_log.uncompressed); /* compressed by default */
  vd_config_free(c);
  c = vd_config_load_string("data_dir: var\ndeployments: [p]\ndecision_log:\n  compress: 1\n",
                            "t.yaml", "/etc", &err);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(err.message, "'compress' must be true or false"), "%s", err.message);
  ck_assert_int_eq(err.line, 4);

  fixture f;
  fixture_init(&f);
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char ids[2][VD_UUID_STRING_SIZE];
  vd_uuid_v7(gen, ids[0], NULL);
  vd_uuid_v7(gen, ids[1], NULL);
  char *t0 = real_trace(0), *t1 = real_trace(1);
  vd_decision_log *log = open_log(f.path, false);
  append(log, ids[0], 1000, t0);
  vd_decision_log_close(log);
  log = open_log(f.path, true);
  append(log, ids[1], 2000, t1);
  char type[16];
  int64_t bytes = 0;
  stored_form(f.path, ids[1], type, sizeof type, &bytes);
  ck_assert_str_eq(type, "text"); /* readable with the sqlite3 CLI */
  assert_get_is(log, ids[0], t0); /* blobs written before still read */
  assert_get_is(log, ids[1], t1);
  vd_decision_log_close(log);
  free(t0);
  free(t1);
  vd_uuid_gen_free(gen);
  fixture_done(&f);
}
END_TEST

START_TEST(the_blob_codec_round_trips_and_checks_its_header) {
  char *trace = real_trace(5);
  size_t len = strlen(trace);
  void *blob = NULL;
  size_t blob_len = 0;
  ck_assert(vd_trace_blob_encode(trace, len, &blob, &blob_len));
  const unsigned char *b = blob;
  ck_assert_int_eq(memcmp(b, "VDZ", 3), 0);
  ck_assert_int_eq(b[3], VD_TRACE_BLOB_LZ4);
  ck_assert_uint_eq(vd_le_get32(b + 4), len);
  vd_error err = {0};
  size_t text_len = 0;
  char *text = vd_trace_blob_decode(blob, blob_len, &text_len, &err);
  ck_assert_msg(text != NULL, "%s", err.message);
  ck_assert_uint_eq(text_len, len);
  ck_assert_str_eq(text, trace);
  free(text);
  /* a recorded length beyond what LZ4 can expand to is refused before any allocation */
  unsigned char *bad = malloc(blob_len);
  memcpy(bad, blob, blob_len);
  vd_le_put32(bad + 4, 0x7fffffffu);
  ck_assert_ptr_null(vd_trace_blob_decode(bad, blob_len, &text_len, &err));
  ck_assert_msg(strstr(err.message, "bad length"), "%s", err.message);
  free(bad);
  /* a small row may not claim more than any trace can be (the attack run made a 4 MB blob claim
   * 1 GiB and a listing of such rows allocate gigabytes): refused before allocating, even with
   * a block large enough for the claim and a valid checksum */
  size_t big = VD_TRACE_BLOB_HEADER + ((size_t)VD_TRACE_BLOB_MAX + 1) / 255 + 64;
  bad = calloc(1, big);
  bad[0] = (unsigned char)'V';
  bad[1] = (unsigned char)'D';
  bad[2] = (unsigned char)'Z';
  bad[3] = VD_TRACE_BLOB_LZ4;
  vd_le_put32(bad + 4, (uint32_t)VD_TRACE_BLOB_MAX + 1);
  reseal(bad, big);
  ck_assert_ptr_null(vd_trace_blob_decode(bad, big, &text_len, &err));
  ck_assert_msg(strstr(err.message, "bad length"), "%s", err.message);
  free(bad);
  free(blob);
  free(trace);
}
END_TEST

int main(void) {
  Suite *s = suite_create("trace_storage");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, compressed_traces_round_trip_through_get_and_listings);
  tcase_add_test(tc, older_text_rows_read_and_list_among_new_ones);
  tcase_add_test(tc, a_damaged_blob_is_an_error_naming_the_decision);
  tcase_add_test(tc, foreach_hands_a_damaged_row_over_and_goes_on);
  tcase_add_test(tc, stored_text_that_is_not_one_object_is_an_error);
  tcase_add_test(tc, get_text_is_the_stored_text_or_the_amended_tree);
  tcase_add_test(tc, a_trace_that_does_not_shrink_is_stored_as_it_is);
  tcase_add_test(tc, compress_false_stores_text_and_reads_blobs_still);
  tcase_add_test(tc, the_blob_codec_round_trips_and_checks_its_header);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
