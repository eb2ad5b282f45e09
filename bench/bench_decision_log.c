/* bench_decision_log: how fast the decision log commits and answers, and what each decision costs
 * it in bytes.
 *
 *   bench_decision_log [--dir DIR] [--seconds S] [--writers 1,4,16] [--trace-file F]
 *                      [--trace-bytes N] [--sizes 10000,100000,1000000] [--fsync-too]
 *                      [--query-trace-bytes N] [--queries-only] [--uncompressed]
 *
 * 0. the write volume per decision (deterministic): WAL frames and bytes, stored trace bytes, for
 *    single-decision commits of realistic traces, compressed and as text;
 * 1. appends/s with N concurrent writers (each append blocks until committed), with the append
 *    latency each caller saw (p50/p99), the group-commit batch sizes and the WAL per decision;
 * 2. get-by-id and list-by-subject latency (p50/p99) as the table grows through the given sizes.
 *
 * Traces are realistic in size and in how well they compress: each is a variant of a real
 * promotions trace (bench/data/promotions_trace.json, 2 candidates, ~9 KB; --trace-file for
 * another) in which every number and every string with digits (ids, timestamps, the subject's
 * values, scores) gets new random digits, the same original value the same new one within a
 * trace (as the request's values recur in the rules' reads and the features), while keys, rule
 * names, reason texts and 64-hex versions stay as in production. --trace-bytes N instead varies
 * the older synthetic N-byte template (it compresses far better than real traces).
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_decision_log.h"
#include "vd_time.h"
#include "vd_trace_blob.h"
#include "vd_uuid.h"

enum { SUBJECTS_PER_ROWS = 10, QUERY_SAMPLES = 2000, MAX_LIST = 16 };

/* A trace to vary (see the top): its text and its variable tokens, each in a class of equal
 * texts. */
typedef struct token {
  size_t at, len;
  size_t cls;
} token;

typedef struct trace_shape {
  char *text;
  size_t len;
  token *tokens;
  size_t ntokens;
  size_t nclasses;
  size_t *class_token; /* a token of each class (its original text) */
  size_t *class_at;    /* where each class's new text goes in a variant's scratch */
  size_t scratch_len;
  size_t id_class; /* the decision id's class (the value of the first "id"), or SIZE_MAX */
} trace_shape;

typedef struct run {
  vd_decision_log *log;
  vd_uuid_gen *gen;
  const trace_shape *shape;
  unsigned seed;
  uint64_t deadline_ns; /* time-bound runs */
  uint64_t quota;       /* count-bound runs (fill); 0 = time-bound */
  uint64_t subjects;
  /* out */
  uint64_t *latencies_ns;
  size_t count, capacity;
  uint64_t failures;
  char (*ids)[VD_UUID_STRING_SIZE]; /* fill: where to record ids, NULL otherwise */
} run;

static void remove_db(const char *path);

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_us(uint64_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1));
  return (double)v[i] / 1000.0;
}

/* The older synthetic trace of about `bytes` bytes (a rule outcome repeated): --trace-bytes. */
static char *make_template(size_t bytes) {
  size_t cap = bytes + 512;
  char *t = malloc(cap);
  size_t n = (size_t)snprintf(t, cap,
                              "{\"id\":\"01a23e0d-9585-70ac-a42e-e7462a94811a\",\"kind\":"
                              "\"promotions\",\"request\":{\"subject\":{\"recency\":6,"
                              "\"history\":329.08}},\"candidates\":[");
  while (n + 120 < bytes)
    n += (size_t)snprintf(t + n, cap - n,
                          "{\"rule\":\"low-uplift\",\"matched\":false,\"read\":{\"score.uplift\":"
                          "0.0123}},");
  snprintf(t + n, cap - n, "{\"final\":\"allow\"}]}");
  return t;
}

static bool is_hex64(const char *s, size_t len) {
  if (len != 64) return false;
  for (size_t i = 0; i < len; i++)
    if (!strchr("0123456789abcdef", s[i])) return false;
  return true;
}

/* Finds the variable tokens of text (taken over): numbers, and string values (not keys) with a
 * digit that are not 64-hex versions; equal texts share a class. */
static trace_shape *shape_new(char *text) {
  trace_shape *s = calloc(1, sizeof *s);
  s->text = text;
  s->len = strlen(text);
  s->tokens = malloc((s->len / 2 + 1) * sizeof *s->tokens);
  s->class_token = malloc((s->len / 2 + 1) * sizeof *s->class_token);
  s->class_at = malloc((s->len / 2 + 1) * sizeof *s->class_at);
  s->id_class = SIZE_MAX;
  bool next_is_id = false;
  for (size_t i = 0; i < s->len;) {
    size_t at = i, len = 0;
    bool is_string = text[i] == '"';
    if (is_string) {
      size_t j = i + 1;
      while (j < s->len && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      at = i + 1;
      len = j - at;
      i = j + 1;
      size_t k = i;
      while (k < s->len && (text[k] == ' ' || text[k] == '\n')) k++;
      if (k < s->len && text[k] == ':') { /* a key */
        if (len == 2 && memcmp(text + at, "id", 2) == 0 && s->id_class == SIZE_MAX)
          next_is_id = true;
        continue;
      }
      bool digits = false;
      for (size_t k = 0; k < len && !digits; k++)
        digits = text[at + k] >= '0' && text[at + k] <= '9';
      if (!digits || is_hex64(text + at, len)) continue;
    } else if (text[i] == '-' || (text[i] >= '0' && text[i] <= '9')) {
      size_t j = i;
      while (j < s->len && strchr("+-.eE0123456789", text[j])) j++;
      len = j - i;
      i = j;
    } else {
      i++;
      continue;
    }
    size_t cls = 0;
    while (cls < s->nclasses) {
      const token *t = &s->tokens[s->class_token[cls]];
      if (t->len == len && memcmp(text + t->at, text + at, len) == 0) break;
      cls++;
    }
    if (cls == s->nclasses) {
      s->class_token[cls] = s->ntokens;
      s->class_at[cls] = s->scratch_len;
      s->scratch_len += len;
      s->nclasses++;
    }
    if (next_is_id && is_string && len == VD_UUID_STRING_SIZE - 1) s->id_class = cls;
    next_is_id = false;
    s->tokens[s->ntokens++] = (token){at, len, cls};
  }
  return s;
}

static void shape_free(trace_shape *s) {
  if (!s) return;
  free(s->text);
  free(s->tokens);
  free(s->class_token);
  free(s->class_at);
  free(s);
}

/* Reads the real trace (VERDICT_SOURCE_DIR/bench/data/promotions_trace.json unless --trace-file),
 * or makes the synthetic one when trace_bytes > 0. */
static trace_shape *load_shape(const char *file, size_t trace_bytes) {
  if (trace_bytes) return shape_new(make_template(trace_bytes));
  char path[1024];
  snprintf(path, sizeof path, "%s",
           file ? file : VERDICT_SOURCE_DIR "/bench/data/promotions_trace.json");
  vd_error err = {0};
  size_t size = 0;
  char *text = vd_read_file(path, 64u << 20, &size, &err);
  if (!text) {
    fprintf(stderr, "bench_decision_log: %s\n", err.message);
    exit(2);
  }
  while (size && (text[size - 1] == '\n' || text[size - 1] == ' ')) text[--size] = '\0';
  return shape_new(text);
}

/* Writes a variant of the shape into out (shape->len + 1 bytes): every class of tokens gets new
 * random digits (a number keeps a non-zero first digit before more digits; a UUID gets random hex
 * too), the decision id class becomes id. scratch: shape->scratch_len bytes. */
static void shape_vary(const trace_shape *s, unsigned *seed, const char *id, char *out,
                       char *scratch) {
  for (size_t c = 0; c < s->nclasses; c++) {
    const token *t = &s->tokens[s->class_token[c]];
    char *dst = scratch + s->class_at[c];
    const char *src = s->text + t->at;
    if (c == s->id_class) {
      memcpy(dst, id, t->len);
      continue;
    }
    bool uuid = t->len == 36 && src[8] == '-' && src[13] == '-' && src[18] == '-' && src[23] == '-';
    for (size_t k = 0; k < t->len; k++) {
      char ch = src[k];
      bool lead =
          (k == 0 || src[k - 1] == '-') && k + 1 < t->len && src[k + 1] >= '0' && src[k + 1] <= '9';
      if (ch >= '0' && ch <= '9')
        ch = lead ? (char)('1' + rand_r(seed) % 9) : (char)('0' + rand_r(seed) % 10);
      else if (uuid && ch >= 'a' && ch <= 'f')
        ch = "0123456789abcdef"[rand_r(seed) % 16];
      dst[k] = ch;
    }
  }
  memcpy(out, s->text, s->len + 1);
  for (size_t i = 0; i < s->ntokens; i++) {
    const token *t = &s->tokens[i];
    memcpy(out + t->at, scratch + s->class_at[t->cls], t->len);
  }
}

static void *writer(void *arg) {
  run *r = arg;
  char *trace = malloc(r->shape->len + 1), *scratch = malloc(r->shape->scratch_len + 1);
  unsigned seed = r->seed;
  for (uint64_t i = 0;; i++) {
    if (r->quota ? i >= r->quota : vd_monotonic_ns() >= r->deadline_ns) break;
    char id[VD_UUID_STRING_SIZE], subject[32];
    vd_uuid_v7(r->gen, id, NULL);
    snprintf(subject, sizeof subject, "customer-%u", (unsigned)(rand_r(&seed) % r->subjects));
    shape_vary(r->shape, &seed, id, trace, scratch);
    vd_decision_record rec = {.id = id,
                              .kind = "promotions",
                              .subject_id = subject,
                              .ruleset_version = "ab12cd34",
                              .model_version = "ef56ab78",
                              .trace_json = trace,
                              .trace_len = r->shape->len};
    uint64_t start = vd_monotonic_ns();
    vd_log_status st = vd_decision_log_append(r->log, &rec, NULL);
    uint64_t ns = vd_monotonic_ns() - start;
    if (st != VD_LOG_OK) {
      r->failures++;
      continue;
    }
    if (r->ids) memcpy(r->ids[i], id, sizeof id);
    if (r->count == r->capacity) {
      r->capacity = r->capacity ? 2 * r->capacity : 4096;
      r->latencies_ns = realloc(r->latencies_ns, r->capacity * sizeof *r->latencies_ns);
    }
    r->latencies_ns[r->count++] = ns;
  }
  free(trace);
  free(scratch);
  return NULL;
}

/* How the variants compress against the trace they come from (they should compress alike). */
static void print_shape(const trace_shape *s) {
  enum { SAMPLES = 200 };
  char *trace = malloc(s->len + 1), *scratch = malloc(s->scratch_len + 1);
  unsigned seed = 7;
  void *blob = NULL;
  size_t blob_len = 0, total = 0, original = s->len;
  if (vd_trace_blob_encode(s->text, s->len, &blob, &blob_len)) original = blob_len;
  free(blob);
  for (int i = 0; i < SAMPLES; i++) {
    shape_vary(s, &seed, "01a23e0d-9585-70ac-a42e-e7462a94811a", trace, scratch);
    blob_len = s->len;
    if (vd_trace_blob_encode(trace, s->len, &blob, &blob_len)) free(blob);
    total += blob_len;
  }
  printf(
      "trace: %zu bytes, %zu variable tokens in %zu classes; LZ4 blob of the original %zu "
      "bytes (%.2fx), of its variants %.0f bytes on average (%.2fx)\n",
      s->len, s->ntokens, s->nclasses, original, (double)s->len / (double)original,
      (double)total / SAMPLES, (double)s->len * SAMPLES / (double)total);
  free(trace);
  free(scratch);
}

/* Runs `writers` threads against log; time-bound (seconds) or count-bound (total rows). */
static void run_writers(vd_decision_log *log, vd_uuid_gen *gen, const trace_shape *shape,
                        int writers, double seconds, uint64_t total, uint64_t subjects,
                        char (*ids)[VD_UUID_STRING_SIZE], uint64_t *all_ns, size_t *all_count,
                        uint64_t *failures, double *elapsed_s) {
  pthread_t threads[256];
  run runs[256];
  uint64_t start = vd_monotonic_ns();
  for (int t = 0; t < writers; t++) {
    uint64_t share = total ? total / writers + (t < (int)(total % writers)) : 0;
    runs[t] = (run){.log = log,
                    .gen = gen,
                    .shape = shape,
                    .seed = 1000u + (unsigned)t, /* fixed: the same traces every run */
                    .deadline_ns = start + (uint64_t)(seconds * 1e9),
                    .quota = share,
                    .subjects = subjects,
                    .ids = ids};
    if (ids) ids += share;
    pthread_create(&threads[t], NULL, writer, &runs[t]);
  }
  *all_count = 0;
  *failures = 0;
  for (int t = 0; t < writers; t++) {
    pthread_join(threads[t], NULL);
    if (all_ns) memcpy(all_ns + *all_count, runs[t].latencies_ns, runs[t].count * sizeof(uint64_t));
    *all_count += runs[t].count;
    *failures += runs[t].failures;
    free(runs[t].latencies_ns);
  }
  *elapsed_s = (double)(vd_monotonic_ns() - start) / 1e9;
}

static vd_decision_log *open_log(const char *path, vd_durability durability, bool uncompressed) {
  remove_db(path);
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(
      &(vd_decision_log_config){.path = path,
                                .durability = durability,
                                .uncompressed = uncompressed,
                                /* writers faster than the index wait for it: the rate measured
                                 * is the one the log sustains, journal and index */
                                .overload = VD_LOG_OVERLOAD_WAIT,
                                .max_wait_ms = 60000},
      &err);
  if (!log) {
    fprintf(stderr, "%s\n", err.message);
    exit(1);
  }
  return log;
}

/* Per committed decision: WAL frames, WAL bytes, stored trace bytes. */
static void per_decision(const vd_decision_log_stats *s, double *frames, double *wal_bytes,
                         double *stored) {
  double n = s->committed ? (double)s->committed : 1.0;
  *frames = (double)s->wal_frames / n;
  *wal_bytes = (double)s->wal_bytes / n;
  *stored = (double)s->stored_trace_bytes / n;
}

/* The write volume and CPU per decision of one writer's appends, journaled and then indexed in
 * batches: deterministic for a given trace (fixed seeds). */
static void bench_cost(const char *dir, const trace_shape *shape) {
  enum { COST_APPENDS = 3000 };
  printf(
      "\n== write volume per decision (1 writer, %d appends, journaled, indexed in batches; "
      "trace %zu bytes) ==\n",
      COST_APPENDS, shape->len);
  printf("%12s %12s %12s %12s %14s %12s %12s\n", "stored as", "trace B", "stored B", "WAL frames",
         "WAL bytes", "file B", "CPU us");
  for (int uncompressed = 0; uncompressed < 2; uncompressed++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bench-cost-%d.db", dir, (int)getpid());
    vd_decision_log *log = open_log(path, VD_DURABILITY_NORMAL, uncompressed);
    vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
    size_t count = 0;
    uint64_t failures = 0;
    double elapsed = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0); /* the writer and the log's threads (the checkpointer) */
    run_writers(log, gen, shape, 1, 0, COST_APPENDS, 100000, NULL, NULL, &count, &failures,
                &elapsed);
    vd_decision_log_flush(log, NULL); /* the index's share counts too */
    getrusage(RUSAGE_SELF, &ru1);
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                             ru0.ru_stime.tv_sec) *
                        1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                             ru0.ru_stime.tv_usec);
    vd_decision_log_stats s;
    vd_decision_log_stats_get(log, &s);
    vd_decision_log_close(log);
    struct stat st = {0};
    stat(path, &st);
    double frames, wal_bytes, stored;
    per_decision(&s, &frames, &wal_bytes, &stored);
    printf("%12s %12.0f %12.0f %12.2f %14.0f %12.0f %12.1f%s\n",
           uncompressed ? "text" : (s.compressed ? "lz4" : "text (no gain)"),
           (double)s.trace_bytes / (double)(s.committed ? s.committed : 1), stored, frames,
           wal_bytes, (double)st.st_size / (double)(s.committed ? s.committed : 1),
           cpu_us / (double)(count ? count : 1), failures ? "  (failures!)" : "");
    fflush(stdout);
    vd_uuid_gen_free(gen);
    remove_db(path);
  }
}

static void bench_throughput(const char *dir, vd_durability durability, const int *writers,
                             int nwriters, double seconds, const trace_shape *shape,
                             bool uncompressed) {
  printf("\n== appends (%s, trace %zu bytes%s, %.1f s per run) ==\n",
         durability == VD_DURABILITY_FSYNC ? "durability: fsync" : "durability: normal", shape->len,
         uncompressed ? ", stored as text" : "", seconds);
  printf("%8s %12s %10s %10s %10s %9s %9s %11s %11s\n", "writers", "appends/s", "p50 us", "p99 us",
         "p99.9 us", "batches", "avg batch", "WAL fr/dec", "WAL B/dec");
  for (int w = 0; w < nwriters; w++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bench-tp-%d-%d.db", dir, (int)getpid(), writers[w]);
    vd_decision_log *log = open_log(path, durability, uncompressed);
    vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
    size_t cap = 64u << 20;
    uint64_t *ns = malloc(cap * sizeof *ns);
    size_t count = 0;
    uint64_t failures = 0;
    double elapsed = 0;
    run_writers(log, gen, shape, writers[w], seconds, 0, 100000, NULL, ns, &count, &failures,
                &elapsed);
    uint64_t flush_start = vd_monotonic_ns();
    vd_decision_log_flush(log, NULL); /* appends/s counts until all of them are indexed */
    elapsed += (double)(vd_monotonic_ns() - flush_start) / 1e9;
    vd_decision_log_stats s;
    vd_decision_log_stats_get(log, &s);
    qsort(ns, count, sizeof *ns, compare_u64);
    double frames, wal_bytes, stored;
    per_decision(&s, &frames, &wal_bytes, &stored);
    printf("%8d %12.0f %10.1f %10.1f %10.1f %9llu %9.1f %11.2f %11.0f%s\n", writers[w],
           (double)count / elapsed, percentile_us(ns, count, 0.5), percentile_us(ns, count, 0.99),
           percentile_us(ns, count, 0.999), (unsigned long long)s.batches,
           s.batches ? (double)s.committed / (double)s.batches : 0.0, frames, wal_bytes,
           failures ? "  (failures!)" : "");
    fflush(stdout);
    free(ns);
    vd_decision_log_close(log);
    vd_uuid_gen_free(gen);
    remove_db(path);
  }
}

/* Subject of a synthetic decision: a Zipf (s = 1) draw over `subjects` customers — rank
 * floor(subjects^u) for u uniform in [0, 1): a few customers are decided on very often, most
 * rarely, as on a shop's traffic (the first customer gets ~1/ln(subjects) of all decisions). */
static unsigned zipf_subject(unsigned *seed, uint64_t subjects) {
  double u = (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
  uint64_t rank = (uint64_t)pow((double)subjects, u);
  return (unsigned)(rank ? rank - 1 : 0);
}

static void check_sqlite(int rc, sqlite3 *db, const char *what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return;
  fprintf(stderr, "bench_decision_log: %s: %s\n", what, sqlite3_errmsg(db));
  exit(1);
}

/* Waits until a file's written pages are on the disk; returns the seconds that took. */
static double sync_file(const char *path) {
  uint64_t start = vd_monotonic_ns();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fdatasync(fd);
    close(fd);
  }
  return (double)(vd_monotonic_ns() - start) / 1e9;
}

/* Query latency as the table grows. The table is filled straight through SQLite (the log's own
 * schema, 50,000 rows per transaction, synchronous off) rather than through appends — 10^7 rows
 * at the append rate would take most of an hour; the appends are measured above. Rows are
 * realistic in shape: UUIDv7 ids in time order, one decision per ms, subjects Zipf-distributed
 * over rows/10 customers, a variant of the shape's trace stored as the log stores it (compressed
 * unless uncompressed; vd_trace_blob_encode). Queries: get by id of uniformly drawn stored
 * decisions, and list by subject (limit 100, the stored texts as the HTTP listing serves them) of
 * subjects drawn like the traffic. */
static void bench_queries(const char *dir, const uint64_t *sizes, int nsizes,
                          const trace_shape *shape, bool uncompressed) {
  char path[512];
  snprintf(path, sizeof path, "%s/bench-q-%d.db", dir, (int)getpid());
  remove_db(path);
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(
      &(vd_decision_log_config){.path = path, .uncompressed = uncompressed}, &err);
  if (!log) {
    fprintf(stderr, "%s\n", err.message);
    exit(1);
  }
  sqlite3 *fill = NULL;
  check_sqlite(sqlite3_open(path, &fill), fill, "open for the fill");
  check_sqlite(
      sqlite3_exec(fill, "PRAGMA synchronous=OFF; PRAGMA cache_size=-262144", NULL, NULL, NULL),
      fill, "pragmas");
  sqlite3_stmt *insert = NULL;
  check_sqlite(sqlite3_prepare_v2(fill,
                                  "INSERT INTO decisions(id, kind, subject_id, ts_us, "
                                  "ruleset_version, model_version, trace) VALUES (?,?,?,?,?,?,?)",
                                  -1, &insert, NULL),
               fill, "prepare");
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  /* a uniform sample of the stored ids (reservoir), for the gets */
  char(*sample)[VD_UUID_STRING_SIZE] = calloc(QUERY_SAMPLES, VD_UUID_STRING_SIZE);
  printf("\n== queries (trace %zu bytes%s, Zipf subjects over rows/%d customers) ==\n", shape->len,
         uncompressed ? " stored as text" : "", SUBJECTS_PER_ROWS);
  printf("%10s %10s %12s %12s %14s %14s %10s\n", "rows", "fill/s", "get p50 us", "get p99 us",
         "subject p50 us", "subject p99 us", "rows/page");
  uint64_t have = 0;
  uint64_t *ns = malloc(QUERY_SAMPLES * sizeof *ns);
  char *trace = malloc(shape->len + 1), *scratch = malloc(shape->scratch_len + 1);
  unsigned seed = 42;
  int64_t ts = vd_wall_us() - (int64_t)sizes[nsizes - 1] * 1000;
  for (int i = 0; i < nsizes; i++) {
    uint64_t subjects = sizes[i] / SUBJECTS_PER_ROWS ? sizes[i] / SUBJECTS_PER_ROWS : 1;
    uint64_t fill_start = vd_monotonic_ns();
    for (uint64_t row = have; row < sizes[i]; row++) {
      if ((row - have) % 50000 == 0)
        check_sqlite(sqlite3_exec(fill, "BEGIN", 0, 0, 0), fill, "begin");
      char id[VD_UUID_STRING_SIZE], subject[32];
      vd_uuid_v7(gen, id, NULL);
      snprintf(subject, sizeof subject, "customer-%u", zipf_subject(&seed, subjects));
      shape_vary(shape, &seed, id, trace, scratch);
      void *blob = NULL;
      size_t blob_len = 0;
      if (!uncompressed) vd_trace_blob_encode(trace, shape->len, &blob, &blob_len);
      sqlite3_bind_text(insert, 1, id, -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 2, "promotions", -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 3, subject, -1, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 4, ts += 1000);
      sqlite3_bind_text(insert, 5, "ab12cd34", -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 6, "ef56ab78", -1, SQLITE_STATIC);
      if (blob)
        sqlite3_bind_blob64(insert, 7, blob, blob_len, SQLITE_STATIC);
      else
        sqlite3_bind_text64(insert, 7, trace, shape->len, SQLITE_STATIC, SQLITE_UTF8);
      check_sqlite(sqlite3_step(insert), fill, "insert");
      sqlite3_reset(insert);
      free(blob);
      uint64_t slot = row < QUERY_SAMPLES ? row : (uint64_t)rand_r(&seed) * 65599u % (row + 1);
      if (slot < QUERY_SAMPLES) memcpy(sample[slot], id, sizeof id);
      if ((row - have) % 50000 == 49999 || row + 1 == sizes[i])
        check_sqlite(sqlite3_exec(fill, "COMMIT", 0, 0, 0), fill, "commit");
    }
    check_sqlite(sqlite3_wal_checkpoint_v2(fill, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
                 fill, "checkpoint");
    double fill_rate = (double)(sizes[i] - have) / ((double)(vd_monotonic_ns() - fill_start) / 1e9);
    /* The fill writes with synchronous off, so gigabytes can still be waiting for writeback: the
     * gets would then queue their reads behind it, which no steady append rate causes. */
    double synced = sync_file(path);
    have = sizes[i];
    size_t gets = have < QUERY_SAMPLES ? (size_t)have : QUERY_SAMPLES;
    /* what makes a slow get: this thread preempted (involuntary switches) or waiting for the
     * disk (blocks read, major faults of the memory map) */
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    size_t slow = 0;
    for (size_t q = 0; q < gets; q++) {
      const char *id = sample[(size_t)rand_r(&seed) % gets];
      uint64_t start = vd_monotonic_ns();
      /* what GET /v1/decisions/{id} serves: the stored text (no amendments here) */
      char *got = NULL;
      size_t got_len = 0;
      if (vd_decision_log_get_text(log, id, &got, &got_len, &err) != VD_LOG_OK) {
        fprintf(stderr, "get %s: %s\n", id, err.message);
        exit(1);
      }
      ns[q] = vd_monotonic_ns() - start;
      slow += ns[q] > 500000;
      free(got);
    }
    getrusage(RUSAGE_THREAD, &ru1);
    qsort(ns, gets, sizeof *ns, compare_u64);
    double g50 = percentile_us(ns, gets, 0.5), g99 = percentile_us(ns, gets, 0.99);
    size_t listed = 0;
    for (int q = 0; q < QUERY_SAMPLES; q++) {
      char subject[32];
      snprintf(subject, sizeof subject, "customer-%u", zipf_subject(&seed, subjects));
      vd_buf page = {0};
      char *next = NULL;
      uint64_t start = vd_monotonic_ns();
      vd_decision_query query = {.subject_id = subject, .limit = 100};
      /* what GET /v1/decisions?subject= serves: the stored texts, not parsed */
      if (!vd_decision_log_list_text(log, &query, &page, &next, &err)) {
        fprintf(stderr, "list: %s\n", err.message);
        exit(1);
      }
      ns[q] = vd_monotonic_ns() - start;
      for (const char *p = page.data; (p = strstr(p, "\"kind\":\"promotions\"")); p++) listed++;
      vd_buf_free(&page);
      free(next);
    }
    qsort(ns, QUERY_SAMPLES, sizeof *ns, compare_u64);
    printf("%10llu %10.0f %12.1f %12.1f %14.1f %14.1f %10.1f\n", (unsigned long long)have,
           fill_rate, g50, g99, percentile_us(ns, QUERY_SAMPLES, 0.5),
           percentile_us(ns, QUERY_SAMPLES, 0.99), (double)listed / QUERY_SAMPLES);
    printf(
        "%10s gets over 500 us: %zu of %zu; meanwhile %ld involuntary context switches, %ld "
        "blocks read, %ld major faults (the fill's writeback took %.1f s before)\n",
        "", slow, gets, ru1.ru_nivcsw - ru0.ru_nivcsw, ru1.ru_inblock - ru0.ru_inblock,
        ru1.ru_majflt - ru0.ru_majflt, synced);
    fflush(stdout);
  }
  struct stat st;
  if (stat(path, &st) == 0)
    printf("database file: %.2f GB for %llu rows (%.0f bytes a row with its indexes)\n",
           (double)st.st_size / 1e9, (unsigned long long)have, (double)st.st_size / (double)have);
  sqlite3_finalize(insert);
  sqlite3_close(fill);
  free(trace);
  free(scratch);
  free(ns);
  free(sample);
  vd_decision_log_close(log);
  vd_uuid_gen_free(gen);
  remove_db(path);
}

/* Removes a database and its WAL and shared-memory files. */
static void remove_db(const char *path) {
  char side[600];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

/* Parses "1,4,16" into out (at most max); returns the count, 0 on a bad list. */
static int parse_list(const char *s, uint64_t *out, int max) {
  int n = 0;
  while (*s && n < max) {
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0) return 0;
    out[n++] = v;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return 0;
  }
  return n;
}

int main(int argc, char **argv) {
  vd_option options[] = {
      {"dir", true, NULL, "folder for the bench databases (default /tmp)"},
      {"seconds", true, NULL, "seconds per throughput run (default 3)"},
      {"writers", true, NULL, "concurrent writer counts (default 1,2,4,8,16,32,64)"},
      {"trace-file", true, NULL,
       "a real trace to vary (default bench/data/promotions_trace.json, ~9 KB)"},
      {"trace-bytes", true, NULL, "the older synthetic N-byte trace instead of the real one"},
      {"sizes", true, NULL, "table sizes for the query runs (default 10000,100000,1000000)"},
      {"fsync-too", false, NULL, "also run the throughput table with durability: fsync"},
      {"query-trace-bytes", true, NULL, "the synthetic N-byte trace for the query runs' rows"},
      {"queries-only", false, NULL, "skip the append runs"},
      {"uncompressed", false, NULL, "store traces as text, as before compression"},
  };
  size_t n_options = sizeof options / sizeof options[0];
  bool help = false;
  size_t npos = 0;
  vd_error err = {0};
  if (!vd_args_parse(argc, argv, 1, options, n_options, NULL, 0, &npos, &help, &err)) {
    fprintf(stderr, "bench_decision_log: %s\n", err.message);
    return 2;
  }
  if (help) {
    printf("usage: bench_decision_log [options]\n");
    for (size_t i = 0; i < n_options; i++)
      printf("  --%-12s %s\n", options[i].name, options[i].help);
    return 0;
  }
  const char *dir = vd_args_get(options, n_options, "dir");
  const char *sec = vd_args_get(options, n_options, "seconds");
  const char *wr = vd_args_get(options, n_options, "writers");
  const char *tb = vd_args_get(options, n_options, "trace-bytes");
  const char *sz = vd_args_get(options, n_options, "sizes");
  double seconds = sec ? strtod(sec, NULL) : 3.0;
  size_t trace_bytes = tb ? (size_t)strtoul(tb, NULL, 10) : 0;
  uint64_t w64[32], sizes[32];
  int nw = parse_list(wr ? wr : "1,2,4,8,16,32,64", w64, 32);
  int ns = parse_list(sz ? sz : "10000,100000,1000000", sizes, 32);
  if (!nw || !ns || seconds <= 0 || (tb && trace_bytes < 128)) {
    fprintf(stderr, "bench_decision_log: bad --writers, --sizes, --seconds or --trace-bytes\n");
    return 2;
  }
  int writers[32];
  for (int i = 0; i < nw; i++) writers[i] = w64[i] > 256 ? 256 : (int)w64[i];
  if (!dir) dir = "/tmp";
  printf("bench_decision_log: SQLite %s, %ld cores online\n", sqlite3_libversion(),
         sysconf(_SC_NPROCESSORS_ONLN));
  const char *qtb = vd_args_get(options, n_options, "query-trace-bytes");
  size_t query_trace_bytes = qtb ? (size_t)strtoul(qtb, NULL, 10) : 0;
  if (qtb && query_trace_bytes < 128) {
    fprintf(stderr, "bench_decision_log: --query-trace-bytes must be at least 128\n");
    return 2;
  }
  const char *trace_file = vd_args_get(options, n_options, "trace-file");
  bool uncompressed = vd_args_get(options, n_options, "uncompressed") != NULL;
  if (!vd_args_get(options, n_options, "queries-only")) {
    trace_shape *shape = load_shape(trace_file, trace_bytes);
    print_shape(shape);
    bench_cost(dir, shape);
    bench_throughput(dir, VD_DURABILITY_NORMAL, writers, nw, seconds, shape, uncompressed);
    if (vd_args_get(options, n_options, "fsync-too"))
      bench_throughput(dir, VD_DURABILITY_FSYNC, writers, nw, seconds, shape, uncompressed);
    shape_free(shape);
  }
  trace_shape *query_shape = load_shape(trace_file, query_trace_bytes);
  bench_queries(dir, sizes, ns, query_shape, uncompressed);
  shape_free(query_shape);
  return 0;
}
