#include "vd_decision_log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_journal.h"
#include "vd_json_check.h"
#include "vd_json_write.h"
#include "vd_le.h"
#include "vd_log_row.h"
#include "vd_printable.h"
#include "vd_time.h"
#include "vd_trace_blob.h"
#include "vd_uuid.h"

const double vd_decision_log_latency_bounds[VD_LOG_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

enum {
  PURGE_CHUNK = 2000,        /* rows deleted per retention transaction */
  ID_MAX = 128,              /* the longest decision id accepted */
  CHECKPOINT_PAGES = 1000,   /* WAL pages written that wake the checkpointer (SQLite's default) */
  WAL_RESET_PAGES = 6000,    /* WAL pages at which the checkpointer starts the WAL over */
  TAIL_PAGES = 32,           /* WAL pages left to copy at most while commits are held */
  CATCH_UP_ROUNDS = 4,       /* checkpoints alongside the commits before holding them */
  DB_CHUNK_BYTES = 4 << 20,  /* the database file grows by this much at a time */
  WAL_HARD_PAGES = 8000,     /* past this, commits wait for the checkpointer's WAL restart */
  MESSAGE_MAX = 256,         /* the error message a waiter gets back */
  INDEX_DELAY_MS = 10,       /* the longest a row waits to be indexed, unless a reader asks */
  RETRY_MS = 100,            /* a failed indexing commit is tried again after this */
  BATCH_MAX_BYTES = 1 << 20, /* an indexing commit takes rows up to this many bytes: it writes
                              * them all to the WAL at once, past the WAL's bounds if large */
  LIST_TEXT_MAX_BYTES = 256 << 20, /* the longest listing page served as text */
  SPACE_CHECK_FRAMES = 1024, /* free space is checked again after this many WAL frames (4 MiB) */
  DEFAULT_CAPACITY = 4096,   /* see the header for every default */
  DEFAULT_BATCH = 512,
  DEFAULT_WAIT_MS = 100,
  DEFAULT_BUSY_MS = 5000,
  DEFAULT_MIN_FREE_BYTES = 64 << 20, /* twice the largest WAL: WAL_HARD_PAGES frames of a 4 KiB
                                      * page and a 24-byte header, 33 MB */
};
static const unsigned default_retention_interval_ms = 3600000;
static const uint64_t space_check_ns = 100000000; /* ... or after 100 ms, whichever comes first */
/* No connection reads through a memory map. A page fault on a page not in memory reads the
 * device's whole readahead window around it (read_ahead_kb: 8 MiB on the development VM), so a
 * get by id at 10^7 decisions read ~84 KB and took milliseconds at p99; read(2) reads what SQLite
 * asks for (~10 KB a get, p99 ~0.4 ms cold; see the README, "Queries on a growing table"). */
#define NO_MMAP_PRAGMA "PRAGMA mmap_size=0"
static const int64_t us_per_day = INT64_C(86400000000);

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS decisions ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"
    " subject_id TEXT,"
    " ts_us INTEGER NOT NULL,"
    " ruleset_version TEXT,"
    " model_version TEXT,"
    " trace TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS decisions_time ON decisions(ts_us, id);"
    "CREATE INDEX IF NOT EXISTS decisions_subject ON decisions(subject_id, ts_us, id);"
    "CREATE INDEX IF NOT EXISTS decisions_kind ON decisions(kind, ts_us, id);"
    "CREATE TABLE IF NOT EXISTS amendments ("
    " seq INTEGER PRIMARY KEY,"
    " decision_id TEXT NOT NULL,"
    " ts_us INTEGER NOT NULL,"
    " body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS amendments_decision ON amendments(decision_id, seq);";

static const char insert_sql[] =
    "INSERT INTO decisions(id, kind, subject_id, ts_us, ruleset_version, model_version, trace)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char purge_sql[] =
    "DELETE FROM decisions WHERE seq IN"
    " (SELECT seq FROM decisions WHERE ts_us < ?1 ORDER BY ts_us LIMIT ?2)";
static const char get_sql[] = "SELECT trace FROM decisions WHERE id = ?1";
static const char amend_sql[] =
    "INSERT INTO amendments(decision_id, ts_us, body) VALUES (?1, ?2, ?3)";
static const char amendments_sql[] =
    "SELECT ts_us, body FROM amendments WHERE decision_id = ?1 ORDER BY seq";

/* One decision journaled and waiting for the index: its row (vd_log_row.h) points into the
 * payload that follows the struct (one allocation). Queued from its append until the writer
 * thread has indexed it; owned by the queue. */
typedef struct queued {
  struct queued *next;
  uint64_t position; /* in the journal */
  int64_t queued_us; /* when it was queued (wall clock, as the writer thread's timed waits) */
  vd_log_row row;
  size_t payload_len;
  unsigned char payload[];
} queued;

/* A purge of rows older than `cutoff_us`, worked through in chunks by the writer thread
 * (writer_main). */
typedef struct purge_request {
  int64_t cutoff_us;
  uint64_t deleted;
  bool done;
  bool ok;
  char message[MESSAGE_MAX];
  struct purge_request *next;
} purge_request;

/* A reader connection from the pool. */
typedef struct reader {
  sqlite3 *db;
  sqlite3_stmt *get;
  sqlite3_stmt *amendments;
  struct reader *next;
} reader;

struct vd_decision_log {
  vd_decision_log_config config;
  char *path;
  char *wal_path; /* path + "-wal" */

  sqlite3 *writer;
  sqlite3_stmt *insert;
  sqlite3_stmt *purge;
  pthread_t thread;
  char *folder; /* the folder holding the file: its file system's free space is checked */
  /* Where appends land before they are indexed (vd_journal.h); NULL when another process (a
   * running server) owns the journal: this one only reads, and appends fail. */
  vd_journal *journal;

  pthread_mutex_t lock; /* guards everything below */
  pthread_cond_t work;  /* the writer thread waits for rows, purges, the connection or stop */
  pthread_cond_t done;  /* purgers wait for their purge, close for the appends in flight */
  pthread_cond_t space; /* appenders wait for queue space (WAIT policy) */
  pthread_cond_t indexed_cond; /* readers catching up wait for the writer thread's commits */
  /* The writer connection is used by one thread at a time: whoever holds `committing` — the
   * writer thread for a batch or a purge chunk, or the checkpointer restarting the WAL. */
  bool committing;
  bool checkpointer_waiting; /* the checkpointer waits to hold commits: it gets the connection
                              * next (restart_wal) */
  bool checkpointer_turn;    /* the connection was handed to the checkpointer */
  bool wal_full; /* the WAL reached WAL_HARD_PAGES: commits wait for the checkpointer's restart
                  * (the disk does not keep up with the appends) */
  pthread_cond_t checkpointer_go; /* signalled with checkpointer_turn */
  queued *head, *tail;            /* journaled, not yet indexed, oldest first (journal order) */
  size_t in_flight;               /* appends inside vd_decision_log_append */
  uint64_t appended;              /* rows queued since open */
  uint64_t indexed;               /* rows done with by the writer thread (stored, or duplicates):
                                   * the queue holds appended - indexed (queued_rows) */
  uint64_t replay_upto;           /* journal frames up to here were found at open */
  size_t catching_up;             /* readers waiting for the queue to be indexed */
  bool writer_done;               /* the writer thread has ended (close) */
  bool closing;                   /* vd_decision_log_close, not a failed open */
  /* The last indexing commit failed: the rows stay queued and are tried again after
   * RETRY_MS; appends go on into the journal until the queue is full. `full` (the file reached
   * max_bytes) refuses appends at once, with index_error. */
  bool index_failing, full;
  int64_t retry_at_us;
  char index_error[MESSAGE_MAX];
  purge_request *purges;   /* FIFO; the head is worked on */
  purge_request retention; /* the periodic purge (no waiter) */
  bool retention_active;
  int64_t next_retention_us;
  bool stopping;
  vd_decision_log_stats stats;

  pthread_mutex_t readers_lock;
  reader *idle_readers;

  /* Checkpoints run on their own thread and connection, so a commit never waits for the WAL to
   * be copied back into the database (SQLite's automatic checkpoint would run inside a commit). */
  sqlite3 *checkpointer;
  pthread_t checkpoint_thread;
  pthread_mutex_t checkpoint_lock;
  pthread_cond_t checkpoint_wanted;
  atomic_int wal_pages;     /* the WAL's size after the last commit, in pages (wal_hook) */
  atomic_int checkpoint_at; /* the WAL size in pages at which a commit wakes the checkpointer */
  atomic_uint_fast64_t wal_frames; /* frames the writer's commits wrote (wal_hook) */
  uint64_t frame_bytes;            /* a WAL frame: the page and its 24-byte header */
  /* the last free-space check that found enough (enough_space), by the thread holding the
   * connection: when, and the WAL frames written by then */
  uint64_t space_ok_ns, space_ok_frames;
  bool checkpoint_due, checkpoint_stop, checkpoint_started;
};

const char *vd_log_status_name(vd_log_status status) {
  switch (status) {
    case VD_LOG_OK:
      return "ok";
    case VD_LOG_OVERLOADED:
      return "overloaded";
    case VD_LOG_FAILED:
      return "failed";
    case VD_LOG_DUPLICATE:
      return "duplicate";
    case VD_LOG_INVALID:
      return "invalid";
    case VD_LOG_CLOSED:
      return "closed";
    case VD_LOG_NOT_FOUND:
      return "not_found";
  }
  return "unknown";
}

/* --- helpers ----------------------------------------------------------------------------- */

static bool sqlite_fail(vd_error *err, sqlite3 *db, const char *path, const char *what) {
  int sys = db ? sqlite3_system_errno(db) : 0;
  return vd_error_set(err, "decision log %s: %s: %s%s%s", path, what,
                      db ? sqlite3_errmsg(db) : "out of memory", sys ? ": " : "",
                      sys ? strerror(sys) : "");
}

static bool exec(sqlite3 *db, const char *sql, const char *path, vd_error *err) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return true;
  int sys = sqlite3_system_errno(db);
  vd_error_set(err, "decision log %s: %s%s%s", path, msg ? msg : sqlite3_errmsg(db),
               sys ? ": " : "", sys ? strerror(sys) : "");
  sqlite3_free(msg);
  return false;
}

static void abs_deadline(struct timespec *ts, int64_t wall_us) {
  ts->tv_sec = (time_t)(wall_us / 1000000);
  ts->tv_nsec = (long)(wall_us % 1000000) * 1000;
}

static void copy_message(char *dst, const char *src) { snprintf(dst, MESSAGE_MAX, "%s", src); }

/* --- commits ------------------------------------------------------------------------------ */

static void record_latency(vd_decision_log_stats *s, double seconds) {
  s->commit_seconds_sum += seconds;
  size_t i = 0;
  while (i < VD_LOG_LATENCY_BUCKETS && seconds > vd_decision_log_latency_bounds[i]) i++;
  s->commit_latency[i]++;
}

static void wake_checkpointer(vd_decision_log *log);

/* The WAL's size as the writer last saw it. A checkpoint's own count is the WAL as it was when the
 * checkpoint began: commits landing while it copies are not in it. */
static int wal_pages(vd_decision_log *log) {
  return atomic_load_explicit(&log->wal_pages, memory_order_relaxed);
}

/* Disk-full safety: the WAL can only be copied back into the database (and so start over) while
 * the file system has room for the pages it holds. Were commits allowed to take the last free
 * bytes, the WAL would hold them and no checkpoint could ever run again — not even once space
 * returns, since the WAL keeps taking what is freed. So appends stop (503) while less than
 * min_free_bytes is free, and the checkpointer is woken to make progress with what is left.
 * Called by appends, with the lock held. */
static bool enough_space(vd_decision_log *log, char *fatal) {
  /* Not at every commit (a statfs system call each): a check that found enough holds for
   * space_check_ns or SPACE_CHECK_FRAMES frames (4 MiB, against the 64 MiB margin), whichever
   * ends first; after a refusal every commit checks again, so the log recovers at once. */
  uint64_t now = vd_monotonic_ns();
  uint64_t frames = atomic_load_explicit(&log->wal_frames, memory_order_relaxed);
  if (log->space_ok_ns && now - log->space_ok_ns < space_check_ns &&
      frames - log->space_ok_frames < SPACE_CHECK_FRAMES)
    return true;
  struct statvfs fs;
  if (statvfs(log->folder, &fs) != 0) return true; /* cannot tell: let SQLite find out */
  uint64_t free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
  log->space_ok_ns = 0;
  if (free_bytes >= log->config.min_free_bytes) {
    log->space_ok_ns = now;
    log->space_ok_frames = frames;
    return true;
  }
  snprintf(fatal, MESSAGE_MAX,
           "only %" PRIu64
           " bytes free on the decision log's file system (%s), under "
           "min_free_bytes %" PRIu64,
           free_bytes, log->folder, log->config.min_free_bytes);
  wake_checkpointer(log);
  return false;
}

/* --- rows as the journal holds them ----------------------------------------------------- */

static queued *new_queued(size_t payload_len) {
  queued *q = malloc(sizeof *q + payload_len);
  if (q) *q = (queued){.payload_len = payload_len};
  return q;
}

/* A queue entry for a record: its row written into the payload, and read back from it, so the
 * row points into the entry (as for a row read from the journal at open). */
static queued *row_of_record(const vd_decision_record *r, int64_t timestamp_us, size_t trace_len,
                             const void *blob, size_t blob_len, vd_error *err) {
  vd_log_row row = {.timestamp_us = timestamp_us, .trace_len = trace_len, .blob = blob != NULL};
  const char *value[VD_ROW_FIELDS] = {r->id,
                                      r->kind,
                                      r->subject_id,
                                      r->ruleset_version,
                                      r->model_version,
                                      blob ? blob : r->trace_json};
  for (int i = 0; i < VD_ROW_FIELDS; i++) {
    size_t len = i == VD_ROW_TRACE ? (blob ? blob_len : trace_len)
                 : value[i]        ? strlen(value[i])
                                   : 0;
    if (len > VD_JOURNAL_PAYLOAD_MAX) {
      vd_error_set(err, "decision log: a field of %zu bytes is too long to store", len);
      return NULL;
    }
    row.field[i] = value[i];
    row.field_len[i] = (uint32_t)len;
  }
  size_t size = vd_log_row_size(&row, err);
  if (!size) return NULL;
  if (size > VD_JOURNAL_PAYLOAD_MAX) {
    vd_error_set(err, "decision log: a decision of %zu bytes is too long to store", size);
    return NULL;
  }
  queued *q = new_queued(size);
  if (!q) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  vd_log_row_write(&row, q->payload);
  if (!vd_log_row_read(q->payload, q->payload_len, &q->row, err)) { /* cannot fail */
    free(q);
    return NULL;
  }
  return q;
}

/* --- indexing: the writer thread -------------------------------------------------------- */

static void bind_field(sqlite3_stmt *st, int column, const vd_log_row *row, int i) {
  if (row->field[i])
    sqlite3_bind_text(st, column, row->field[i], (int)row->field_len[i], SQLITE_STATIC);
  else
    sqlite3_bind_null(st, column);
}

/* Inserts the first n queued rows from `batch` and commits them, without the lock. False with
 * `fatal` when the transaction failed: nothing of it is stored, the rows stay queued, and *full
 * says whether the file reached max_bytes. A row whose id is stored already is skipped: counted
 * in skipped[0] as a duplicate, or in skipped[1] when it is a journal frame found at open
 * (replay_upto), indexed before the last stop. */
static bool commit_batch(vd_decision_log *log, queued *batch, size_t n, uint64_t skipped[2],
                         bool *full, char *fatal) {
  sqlite3 *db = log->writer;
  sqlite3_stmt *st = log->insert;
  skipped[0] = skipped[1] = 0;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    snprintf(fatal, MESSAGE_MAX, "cannot begin a transaction: %s", sqlite3_errmsg(db));
  queued *q = batch;
  for (size_t i = 0; i < n && !fatal[0]; i++) {
    const vd_log_row *row = &q->row;
    bind_field(st, 1, row, VD_ROW_ID);
    bind_field(st, 2, row, VD_ROW_KIND);
    bind_field(st, 3, row, VD_ROW_SUBJECT);
    sqlite3_bind_int64(st, 4, row->timestamp_us);
    bind_field(st, 5, row, VD_ROW_RULESET);
    bind_field(st, 6, row, VD_ROW_MODEL);
    if (row->blob)
      sqlite3_bind_blob(st, 7, row->field[VD_ROW_TRACE], (int)row->field_len[VD_ROW_TRACE],
                        SQLITE_STATIC);
    else
      bind_field(st, 7, row, VD_ROW_TRACE);
    int rc = sqlite3_step(st);
    if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT)
      skipped[q->position <= log->replay_upto]++; /* only this row is undone */
    else if (rc != SQLITE_DONE)
      snprintf(fatal, MESSAGE_MAX, "cannot insert: %s", sqlite3_errmsg(db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (i + 1 < n) q = q->next; /* the last one's next belongs to the appenders */
  }
  if (!fatal[0] && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    snprintf(fatal, MESSAGE_MAX, "cannot commit: %s", sqlite3_errmsg(db));
  if (!fatal[0]) return true;
  *full = (sqlite3_errcode(db) & 0xff) == SQLITE_FULL;
  int sys = sqlite3_system_errno(db);
  if (sys) {
    size_t len = strlen(fatal);
    snprintf(fatal + len, MESSAGE_MAX - len, ": %s", strerror(sys));
  }
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return false;
}

/* Deletes one chunk of rows older than the request's cutoff; marks it done when nothing is left. */
static void purge_chunk(vd_decision_log *log, purge_request *req) {
  sqlite3 *db = log->writer;
  sqlite3_bind_int64(log->purge, 1, req->cutoff_us);
  sqlite3_bind_int(log->purge, 2, PURGE_CHUNK);
  int rc = sqlite3_step(log->purge);
  int changes = rc == SQLITE_DONE ? sqlite3_changes(db) : 0;
  if (rc != SQLITE_DONE) {
    snprintf(req->message, sizeof req->message, "retention delete failed: %s", sqlite3_errmsg(db));
    req->ok = false;
    req->done = true;
  }
  sqlite3_reset(log->purge);
  req->deleted += (uint64_t)changes;
  if (changes < PURGE_CHUNK) req->done = true;
}

/* Rows journaled and not yet indexed (lock held). */
static size_t queued_rows(const vd_decision_log *log) {
  return (size_t)(log->appended - log->indexed);
}

/* How many of the oldest queued rows the next indexing commit takes (lock held): max_batch, or
 * fewer when they hold BATCH_MAX_BYTES. */
static size_t batch_size(const vd_decision_log *log) {
  size_t n = 0, bytes = 0;
  for (queued *q = log->head; q && n < log->config.max_batch && bytes < BATCH_MAX_BYTES;
       q = q->next) {
    n++;
    bytes += q->payload_len;
  }
  return n;
}

/* The first n rows are indexed (lock held): off the queue, counted, freed; the journal may reuse
 * the space of their frames. */
static void drop_indexed(vd_decision_log *log, size_t n, const uint64_t skipped[2]) {
  vd_decision_log_stats *s = &log->stats;
  uint64_t position = 0;
  for (size_t i = 0; i < n; i++) {
    queued *q = log->head;
    log->head = q->next;
    s->trace_bytes += q->row.trace_len;
    s->stored_trace_bytes += q->row.field_len[VD_ROW_TRACE];
    s->compressed += q->row.blob;
    position = q->position;
    free(q);
  }
  if (!log->head) log->tail = NULL;
  log->indexed += n;
  s->committed += n - skipped[0] - skipped[1];
  s->duplicates += skipped[0];
  vd_journal_indexed(log->journal, position);
  pthread_cond_broadcast(&log->space);
  pthread_cond_broadcast(&log->indexed_cond);
}

/* Indexes the oldest queued rows, up to max_batch, in one transaction (lock held on entry and
 * exit, dropped around the SQLite work; the connection is taken). */
static void index_batch(vd_decision_log *log) {
  size_t n = batch_size(log);
  queued *batch = log->head;
  pthread_mutex_unlock(&log->lock);
  char fatal[MESSAGE_MAX] = "";
  uint64_t skipped[2] = {0, 0};
  bool full = false;
  uint64_t start = vd_monotonic_ns();
  /* no free-space check here: these rows are acknowledged already, and appends (refusal) keep
   * min_free_bytes for the checkpoints */
  bool ok = commit_batch(log, batch, n, skipped, &full, fatal);
  double seconds = (double)(vd_monotonic_ns() - start) / 1e9;
  pthread_mutex_lock(&log->lock);
  vd_decision_log_stats *s = &log->stats;
  s->batches++;
  s->index_seconds_sum += seconds;
  if (ok) {
    if (n > s->max_batch) s->max_batch = n;
    drop_indexed(log, n, skipped);
    log->index_failing = log->full = false;
  } else {
    s->failed_commits++;
    log->index_failing = true;
    log->full = full;
    copy_message(log->index_error, fatal);
    log->retry_at_us = vd_wall_us() + RETRY_MS * 1000;
    pthread_cond_broadcast(&log->indexed_cond); /* readers catching up stop waiting */
  }
  s->healthy = ok;
  if (wal_pages(log) >= WAL_HARD_PAGES && log->checkpoint_started) log->wal_full = true;
}

/* Whether the writer thread should index now (lock held): rows are queued, the WAL and the last
 * failure allow it, and a batch is full, its oldest row has waited INDEX_DELAY_MS, a reader waits
 * for it, or the log closes. The delay makes batches of tens to hundreds of rows under load,
 * where a commit per row cost ~50-140 us of CPU; a reader never waits for it. */
static bool index_due(const vd_decision_log *log, int64_t now_us) {
  if (!log->head || log->wal_full) return false;
  if (log->index_failing && now_us < log->retry_at_us && !log->catching_up) return false;
  return log->stopping || log->catching_up || queued_rows(log) >= log->config.max_batch ||
         now_us - log->head->queued_us >= INDEX_DELAY_MS * 1000;
}

/* Decisions older than this are past retention (retention_days > 0). */
static int64_t retention_cutoff_us(const vd_decision_log *log, int64_t now_us) {
  return now_us - (int64_t)log->config.retention_days * us_per_day;
}

/* The purge to work on next, or NULL: explicit requests first, then a due periodic retention. */
static purge_request *next_purge(vd_decision_log *log, int64_t now_us) {
  if (log->purges) return log->purges;
  if (log->config.retention_days == 0) return NULL;
  if (!log->retention_active && now_us >= log->next_retention_us) {
    log->retention = (purge_request){.cutoff_us = retention_cutoff_us(log, now_us), .ok = true};
    log->retention_active = true;
    log->next_retention_us = now_us + (int64_t)log->config.retention_interval_ms * 1000;
  }
  return log->retention_active ? &log->retention : NULL;
}

static void finish_purge(vd_decision_log *log, purge_request *req) {
  log->stats.purged += req->deleted;
  if (req == &log->retention) {
    log->retention_active = false;
    return;
  }
  log->purges = req->next;
  pthread_cond_broadcast(&log->done);
}

/* Work for the purge thread now: an explicit purge, or a due retention pass. */
static bool purge_due(vd_decision_log *log, int64_t now_us) {
  return log->purges || (log->config.retention_days > 0 &&
                         (log->retention_active || now_us >= log->next_retention_us));
}

/* Gives up the writer connection (lock held): to the checkpointer when it waits for it, else back
 * to the writer thread. */
static void release_connection(vd_decision_log *log) {
  if (log->checkpointer_waiting) {
    /* handed over with `committing` still set, so a stream of batches cannot starve it */
    log->checkpointer_waiting = false;
    log->checkpointer_turn = true;
    pthread_cond_signal(&log->checkpointer_go);
    return;
  }
  log->committing = false;
  pthread_cond_signal(&log->work);
}

/* The writer thread: indexes the queued rows in batches and, between them, runs retention and
 * explicit purges one chunk at a time, so rows never wait behind a long delete. On close it
 * indexes everything still queued (or, if that fails, leaves it to the journal for the next
 * open) before it ends. */
static void *writer_main(void *arg) {
  vd_decision_log *log = arg;
  pthread_mutex_lock(&log->lock);
  for (;;) {
    int64_t now = vd_wall_us();
    if (log->committing) { /* the checkpointer holds the connection */
      pthread_cond_wait(&log->work, &log->lock);
      continue;
    }
    if (index_due(log, now)) {
      log->committing = true;
      index_batch(log);
      release_connection(log);
      pthread_mutex_unlock(&log->lock);
      vd_journal_recycle(log->journal); /* here, not in an append's switch to the other file */
      pthread_mutex_lock(&log->lock);
      continue;
    }
    if (log->stopping && (!log->head || log->index_failing)) break;
    purge_request *purge = purge_due(log, now) ? next_purge(log, now) : NULL;
    if (purge) {
      log->committing = true;
      pthread_mutex_unlock(&log->lock);
      purge_chunk(log, purge);
      pthread_mutex_lock(&log->lock);
      if (purge->done) finish_purge(log, purge);
      release_connection(log);
      continue;
    }
    /* sleep until the oldest row is due, the failed commit may be tried again, or retention */
    int64_t wake = INT64_MAX;
    if (log->head && !log->wal_full)
      wake = log->index_failing ? log->retry_at_us : log->head->queued_us + INDEX_DELAY_MS * 1000;
    if (log->config.retention_days > 0 && log->next_retention_us < wake)
      wake = log->next_retention_us;
    if (wake == INT64_MAX) {
      pthread_cond_wait(&log->work, &log->lock);
    } else {
      struct timespec deadline;
      abs_deadline(&deadline, wake);
      pthread_cond_timedwait(&log->work, &log->lock, &deadline);
    }
  }
  log->writer_done = true;
  pthread_cond_broadcast(&log->indexed_cond);
  pthread_mutex_unlock(&log->lock);
  return NULL;
}

/* --- checkpoints ------------------------------------------------------------------------- */

/* Called by SQLite on the committing thread after each commit, with the WAL's size in pages. It
 * only wakes the checkpointer: no checkpoint ever runs on a committing thread (its fsyncs took
 * 5-17 ms there, and every commit queued behind it waited). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages) {
  (void)db;
  (void)name;
  vd_decision_log *log = arg;
  int before = atomic_exchange_explicit(&log->wal_pages, pages, memory_order_relaxed);
  if (pages < before) /* the WAL started over */
    atomic_store_explicit(&log->checkpoint_at, CHECKPOINT_PAGES, memory_order_relaxed);
  /* this commit's frames: the growth, or all of it when the WAL started over (the checkpointer
   * sets wal_pages to 0 when it restarts the WAL, so `before` is 0 then too) */
  int written = pages >= before ? pages - before : pages;
  atomic_fetch_add_explicit(&log->wal_frames, (uint_fast64_t)written, memory_order_relaxed);
  /* once per CHECKPOINT_PAGES, not at every commit: each pass costs the checkpointer a wake-up
   * and a sync of the WAL */
  if (pages >= atomic_load_explicit(&log->checkpoint_at, memory_order_relaxed))
    wake_checkpointer(log);
  return SQLITE_OK;
}

/* One PASSIVE checkpoint on the checkpointer's connection: copies what no reader still needs
 * and never waits for the writer. *wal gets the WAL's size and *copied how much of it is in
 * the database now, both in pages. */
static bool checkpoint_passive(vd_decision_log *log, int *wal, int *copied) {
  *wal = *copied = 0;
  return sqlite3_wal_checkpoint_v2(log->checkpointer, NULL, SQLITE_CHECKPOINT_PASSIVE, wal,
                                   copied) == SQLITE_OK;
}

/* Writes a file's dirty pages to the disk now, on the checkpointer's thread, so that the sync
 * SQLite makes of it later — while commits are held — finds little left to write. */
static void flush_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fdatasync(fd);
  close(fd);
}

/* Takes the writer connection for the checkpointer, holding off commits and purges: at once when
 * it is free, else from whoever has it next (release_connection hands it over). */
static void hold_commits(vd_decision_log *log) {
  pthread_mutex_lock(&log->lock);
  if (!log->committing) {
    log->committing = true;
  } else {
    log->checkpointer_waiting = true;
    while (!log->checkpointer_turn) pthread_cond_wait(&log->checkpointer_go, &log->lock);
    log->checkpointer_turn = false;
  }
  pthread_mutex_unlock(&log->lock);
}

static void resume_commits(vd_decision_log *log, bool restarted, uint64_t held_since_ns) {
  double held = (double)(vd_monotonic_ns() - held_since_ns) / 1e9;
  pthread_mutex_lock(&log->lock);
  vd_decision_log_stats *s = &log->stats;
  s->wal_restarts += restarted;
  if (restarted) atomic_store_explicit(&log->wal_pages, 0, memory_order_relaxed);
  log->wal_full = false; /* if it did not start over (a reader, an I/O error), the next commit
                          * tells again and the checkpointer tries again */
  s->checkpoint_holds++;
  s->checkpoint_hold_seconds_sum += held;
  if (held > s->checkpoint_hold_seconds_max) s->checkpoint_hold_seconds_max = held;
  release_connection(log);
  pthread_mutex_unlock(&log->lock);
}

/* SQLite starts the WAL over (the next commit writes from its beginning) only after a checkpoint
 * that copied all of it. Under continuous writes a PASSIVE checkpoint never ends caught up —
 * commits land while it copies — so the WAL would grow without bound. So once the WAL holds
 * WAL_RESET_PAGES, the checkpointer catches up alongside the commits as far as it can (and
 * flushes what it copied and the WAL itself), then holds the commits for the last few pages
 * only: a checkpoint of at most ~TAIL_PAGES and two small syncs (about 1-2 ms on the development
 * disk, against 5-17 ms for the full checkpoint the committing thread used to run itself). The
 * WAL so stays near WAL_RESET_PAGES, overshooting by what commits write meanwhile; should it
 * reach WAL_HARD_PAGES (the disk does not keep up), commits wait for this (wal_full). */
static bool commits_wait(vd_decision_log *log) {
  pthread_mutex_lock(&log->lock);
  bool full = log->wal_full;
  pthread_mutex_unlock(&log->lock);
  return full;
}

static void restart_wal(vd_decision_log *log, int copied) {
  int wal = 0;
  for (int round = 0;; round++) {
    flush_file(log->path);
    flush_file(log->wal_path);
    int left = wal_pages(log) - copied;
    /* no commit since: caught up, and the next commit starts the WAL over (if one was under way
     * after all, the next wake-up tries again) — unless commits wait for this (wal_full) */
    if (left == 0 && !commits_wait(log)) return;
    if (left <= TAIL_PAGES || round == CATCH_UP_ROUNDS || wal_pages(log) >= WAL_HARD_PAGES) break;
    if (!checkpoint_passive(log, &wal, &copied)) break;
  }
  hold_commits(log);
  uint64_t start = vd_monotonic_ns();
  bool caught_up = checkpoint_passive(log, &wal, &copied) && wal == copied; /* exact: no writer */
  resume_commits(log, caught_up, start);
}

static void wake_checkpointer(vd_decision_log *log) {
  if (!log->checkpoint_started) return;
  pthread_mutex_lock(&log->checkpoint_lock);
  log->checkpoint_due = true;
  pthread_cond_signal(&log->checkpoint_wanted);
  pthread_mutex_unlock(&log->checkpoint_lock);
}

static void *checkpoint_main(void *arg) {
  vd_decision_log *log = arg;
  pthread_mutex_lock(&log->checkpoint_lock);
  for (;;) {
    while (!log->checkpoint_due && !log->checkpoint_stop)
      pthread_cond_wait(&log->checkpoint_wanted, &log->checkpoint_lock);
    if (log->checkpoint_stop) break;
    log->checkpoint_due = false;
    pthread_mutex_unlock(&log->checkpoint_lock);
    int wal = 0, copied = 0;
    bool ok = checkpoint_passive(log, &wal, &copied);
    pthread_mutex_lock(&log->lock);
    log->stats.checkpoint_passes++;
    pthread_mutex_unlock(&log->lock);
    if (wal_pages(log) >= WAL_RESET_PAGES) restart_wal(log, ok ? copied : 0);
    int next = wal_pages(log) + CHECKPOINT_PAGES;
    atomic_store_explicit(&log->checkpoint_at, next < WAL_RESET_PAGES ? next : WAL_RESET_PAGES,
                          memory_order_relaxed);
    pthread_mutex_lock(&log->checkpoint_lock);
  }
  pthread_mutex_unlock(&log->checkpoint_lock);
  return NULL;
}

static bool start_checkpointer(vd_decision_log *log, vd_error *err) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(log->path, &log->checkpointer, flags, NULL) != SQLITE_OK)
    return sqlite_fail(err, log->checkpointer, log->path, "cannot open the checkpointer");
  sqlite3_busy_timeout(log->checkpointer, (int)log->config.busy_timeout_ms);
  /* a connection checkpoints only once it has seen that the database is in WAL mode (until
   * then sqlite3_wal_checkpoint_v2 does nothing and reports a WAL of -1 pages) */
  if (!exec(log->checkpointer, "PRAGMA journal_mode=WAL", log->path, err) ||
      !exec(log->writer, "PRAGMA wal_autocheckpoint=0", log->path, err))
    return false;
  /* The database file grows as checkpoints copy new pages into it; each growth is a metadata
   * change that the next sync must commit to the file system's journal too (a few ms here, while
   * commits are held). Grown in DB_CHUNK_BYTES steps, most syncs write data only. */
  int chunk = DB_CHUNK_BYTES;
  sqlite3_file_control(log->checkpointer, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
  sqlite3_wal_hook(log->writer, wal_hook, log);
  int rc = pthread_create(&log->checkpoint_thread, NULL, checkpoint_main, log);
  if (rc != 0)
    return vd_error_set(err, "decision log: cannot start the checkpoint thread: %s", strerror(rc));
  log->checkpoint_started = true;
  return true;
}

static void stop_checkpointer(vd_decision_log *log) {
  if (log->checkpoint_started) {
    pthread_mutex_lock(&log->checkpoint_lock);
    log->checkpoint_stop = true;
    pthread_cond_signal(&log->checkpoint_wanted);
    pthread_mutex_unlock(&log->checkpoint_lock);
    pthread_join(log->checkpoint_thread, NULL);
    log->checkpoint_started = false;
  }
  sqlite3_close(log->checkpointer);
  log->checkpointer = NULL;
}

/* --- open and close ------------------------------------------------------------------------ */

static void apply_defaults(vd_decision_log_config *c) {
  if (!c->queue_capacity) c->queue_capacity = DEFAULT_CAPACITY;
  if (!c->max_batch) c->max_batch = DEFAULT_BATCH;
  if (!c->max_wait_ms) c->max_wait_ms = DEFAULT_WAIT_MS;
  if (!c->busy_timeout_ms) c->busy_timeout_ms = DEFAULT_BUSY_MS;
  if (!c->retention_interval_ms) c->retention_interval_ms = default_retention_interval_ms;
  if (!c->min_free_bytes) c->min_free_bytes = DEFAULT_MIN_FREE_BYTES;
}

static int64_t pragma_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static bool open_writer(vd_decision_log *log, vd_error *err) {
  const char *path = log->path;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &log->writer, flags, NULL) != SQLITE_OK) {
    char *dir = strdup(path);
    const char *folder = dir ? dirname(dir) : ".";
    if (access(folder, W_OK) != 0) {
      vd_error_set(err, "decision log %s: the folder %s is not writable: %s", path, folder,
                   strerror(errno));
      free(dir);
      return false;
    }
    free(dir);
    return sqlite_fail(err, log->writer, path, "cannot open for writing");
  }
  sqlite3 *db = log->writer;
  if (sqlite3_db_readonly(db, "main") == 1)
    return vd_error_set(err, "decision log %s: the file or its folder is read-only", path);
  sqlite3_busy_timeout(db, (int)log->config.busy_timeout_ms);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
    return sqlite_fail(err, db, path, "cannot set WAL mode");
  bool wal = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
  sqlite3_finalize(st);
  if (!wal) return sqlite_fail(err, db, path, "cannot switch to WAL mode (read-only folder?)");
  const char *sync = log->config.durability == VD_DURABILITY_FSYNC ? "PRAGMA synchronous=FULL"
                                                                   : "PRAGMA synchronous=NORMAL";
  /* A small page cache: SQLite ends every write transaction by dropping cached pages past the
   * database's end (pcache1 truncate), a walk whose cost grows with the cache: with 64 MiB it
   * was 6 % of the server's CPU under load (perf). The pages an append touches are the
   * rightmost path of each index and one random leaf of the subject index; one that fell out
   * of the cache is a read from the page cache, or from the disk when cold (NO_MMAP_PRAGMA). */
  if (!exec(db, sync, path, err) ||
      !exec(db, "PRAGMA cache_size=-2048; " NO_MMAP_PRAGMA, path, err) ||
      !exec(db, schema_sql, path, err))
    return false;
  /* a write lock proves the folder is writable now, not only at some later first commit */
  if (!exec(db, "BEGIN IMMEDIATE; COMMIT", path, err)) return false;
  if (log->config.max_bytes > 0) {
    int64_t page = pragma_int(db, "PRAGMA page_size");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%" PRIu64,
             log->config.max_bytes / (uint64_t)(page > 0 ? page : 4096));
    if (!exec(db, sql, path, err)) return false;
  }
  log->stats.fsync = pragma_int(db, "PRAGMA synchronous") >= 2;
  int64_t page_size = pragma_int(db, "PRAGMA page_size");
  log->frame_bytes = (uint64_t)(page_size > 0 ? page_size : 4096) + 24;
  if (sqlite3_prepare_v3(db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &log->insert, NULL) ||
      sqlite3_prepare_v3(db, purge_sql, -1, SQLITE_PREPARE_PERSISTENT, &log->purge, NULL))
    return sqlite_fail(err, db, path, "cannot prepare statements");
  return true;
}

/* Puts a journaled row at the end of the queue (the lock held, or at open). */
static void enqueue(vd_decision_log *log, queued *q, uint64_t position) {
  q->position = position;
  q->queued_us = vd_wall_us();
  if (log->tail)
    log->tail->next = q;
  else
    log->head = q;
  log->tail = q;
  log->appended++;
}

/* A frame that passed its checksum but does not read as a row (a row format of a newer
 * version, after a downgrade): set aside, as it is, in DB_PATH.journal-unreadable — its
 * position (uint64), its length (uint32), its payload — rather than refusing to start or
 * dropping it. */
static bool set_aside(vd_decision_log *log, uint64_t position, const unsigned char *payload,
                      size_t len, vd_error *err) {
  size_t n = strlen(log->path) + sizeof ".journal-unreadable";
  char *path = malloc(n);
  if (!path) return vd_error_set(err, "out of memory");
  snprintf(path, n, "%s.journal-unreadable", log->path);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  unsigned char head[12];
  vd_le_put64(head, position);
  vd_le_put32(head + 8, (uint32_t)len);
  bool ok = fd >= 0 && write(fd, head, sizeof head) == (ssize_t)sizeof head &&
            write(fd, payload, len) == (ssize_t)len && fsync(fd) == 0;
  if (!ok) vd_error_set(err, "cannot set it aside in %s: %s", path, strerror(errno));
  if (fd >= 0) close(fd);
  free(path);
  return ok;
}

/* A frame found in the journal at open: a row acknowledged before the last stop and perhaps not
 * indexed yet. Queued like an append; one already indexed is skipped by its id (commit_batch),
 * one older than the retention period is not indexed again (retention deleted it, or would). */
static bool queue_replayed(void *ctx, uint64_t position, const unsigned char *payload, size_t len,
                           vd_error *err) {
  vd_decision_log *log = ctx;
  queued *q = new_queued(len);
  if (!q) return vd_error_set(err, "out of memory");
  memcpy(q->payload, payload, len);
  vd_error why = {0};
  if (!vd_log_row_read(q->payload, len, &q->row, &why)) {
    free(q);
    log->stats.journal_unreadable++;
    if (set_aside(log, position, payload, len, err)) return true;
    vd_error_prefix(err, "decision log journal of %s, frame %" PRIu64 " (%s)", log->path, position,
                    why.message);
    return false;
  }
  if (log->config.retention_days > 0 &&
      q->row.timestamp_us < retention_cutoff_us(log, vd_wall_us())) {
    free(q);
    log->stats.replay_expired++;
    return true;
  }
  enqueue(log, q, position);
  log->replay_upto = position;
  log->stats.replayed++;
  return true;
}

/* A tool's log (shared_reader) indexes what it took from the journal at once, makes it durable
 * (a checkpoint syncs the database) and lets the journal go, so that a server can take it. */
static bool index_and_release(vd_decision_log *log, vd_error *err) {
  pthread_mutex_lock(&log->lock);
  while (log->head && !log->index_failing) index_batch(log);
  bool indexed = !log->index_failing;
  pthread_mutex_unlock(&log->lock);
  if (!indexed)
    return vd_error_set(err, "decision log %s: cannot index its journal: %s", log->path,
                        log->index_error);
  if (sqlite3_wal_checkpoint_v2(log->writer, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
          SQLITE_OK ||
      !vd_journal_clear(log->journal, err))
    return sqlite_fail(err, log->writer, log->path, "cannot make its journal's rows durable");
  vd_journal_close(log->journal);
  log->journal = NULL;
  return true;
}

/* Opens the journal, queueing what it holds. The server's log owns it, waiting up to
 * busy_timeout_ms for a tool to let it go. A tool's log (shared_reader) takes it only when no
 * process has it: then it indexes what it holds and lets it go; else it reads the index only. */
static bool open_journal(vd_decision_log *log, vd_error *err) {
  bool busy = false, shared = log->config.shared_reader;
  vd_journal_options options = {.sync = log->config.durability == VD_DURABILITY_FSYNC,
                                .lock_wait_ms = shared ? 0 : log->config.busy_timeout_ms};
  vd_error why = {0};
  log->journal = vd_journal_open(log->path, &options, queue_replayed, log, &busy, &why);
  if (!log->journal) {
    if (shared && busy) return true;
    *err = why;
    return false;
  }
  log->stats.journal_damaged_bytes = vd_journal_damaged_bytes(log->journal);
  return !shared || index_and_release(log, err);
}

static void close_reader(reader *r) {
  sqlite3_finalize(r->get);
  sqlite3_finalize(r->amendments);
  sqlite3_close(r->db);
  free(r);
}

static void free_log(vd_decision_log *log) {
  stop_checkpointer(log);
  sqlite3_finalize(log->insert);
  sqlite3_finalize(log->purge);
  if (log->writer) {
    /* fold the WAL back into the database so a clean shutdown leaves one file; the checkpoint
     * syncs it, so only then may an empty queue empty the journal (it starts empty next time;
     * else its rows are indexed then) */
    bool durable = sqlite3_wal_checkpoint_v2(log->writer, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                             NULL) == SQLITE_OK;
    if (durable && log->journal && !log->head && log->closing) vd_journal_clear(log->journal, NULL);
    sqlite3_close(log->writer);
  }
  vd_journal_close(log->journal);
  for (queued *q = log->head, *next; q; q = next) { /* left in the journal */
    next = q->next;
    free(q);
  }
  for (reader *r = log->idle_readers, *next; r; r = next) {
    next = r->next;
    close_reader(r);
  }
  pthread_mutex_destroy(&log->lock);
  pthread_mutex_destroy(&log->readers_lock);
  pthread_mutex_destroy(&log->checkpoint_lock);
  pthread_cond_destroy(&log->checkpoint_wanted);
  pthread_cond_destroy(&log->checkpointer_go);
  pthread_cond_destroy(&log->work);
  pthread_cond_destroy(&log->done);
  pthread_cond_destroy(&log->space);
  pthread_cond_destroy(&log->indexed_cond);
  free(log->folder);
  free(log->wal_path);
  free(log->path);
  free(log);
}

vd_decision_log *vd_decision_log_open(const vd_decision_log_config *config, vd_error *err) {
  if (!config || !config->path || !config->path[0]) {
    vd_error_set(err, "decision log: no path given");
    return NULL;
  }
  vd_decision_log *log = calloc(1, sizeof *log);
  if (!log || !(log->path = strdup(config->path))) {
    free(log);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  log->config = *config;
  log->config.path = log->path;
  apply_defaults(&log->config);
  char *copy = strdup(log->path);
  log->folder = copy ? strdup(dirname(copy)) : NULL;
  free(copy);
  size_t wal_len = strlen(log->path) + sizeof "-wal";
  log->wal_path = malloc(wal_len);
  if (log->wal_path) snprintf(log->wal_path, wal_len, "%s-wal", log->path);
  if (!log->folder || !log->wal_path) {
    free(log->folder);
    free(log->wal_path);
    free(log->path);
    free(log);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&log->lock, NULL);
  pthread_mutex_init(&log->readers_lock, NULL);
  pthread_cond_init(&log->work, NULL);
  pthread_cond_init(&log->done, NULL);
  pthread_cond_init(&log->space, NULL);
  pthread_cond_init(&log->indexed_cond, NULL);
  pthread_mutex_init(&log->checkpoint_lock, NULL);
  pthread_cond_init(&log->checkpoint_wanted, NULL);
  pthread_cond_init(&log->checkpointer_go, NULL);
  atomic_init(&log->wal_pages, 0);
  atomic_init(&log->checkpoint_at, CHECKPOINT_PAGES);
  atomic_init(&log->wal_frames, 0);
  log->stats.queue_capacity = log->config.queue_capacity;
  log->stats.healthy = true;
  log->next_retention_us = vd_wall_us(); /* first retention pass right after start */
  if (!open_writer(log, err) || !open_journal(log, err) || !start_checkpointer(log, err)) {
    free_log(log);
    return NULL;
  }
  int rc = pthread_create(&log->thread, NULL, writer_main, log);
  if (rc != 0) {
    vd_error_set(err, "decision log: cannot start the writer thread: %s", strerror(rc));
    free_log(log);
    return NULL;
  }
  return log;
}

void vd_decision_log_close(vd_decision_log *log) {
  if (!log) return;
  pthread_mutex_lock(&log->lock);
  log->stopping = true;
  pthread_cond_broadcast(&log->work);
  pthread_cond_broadcast(&log->space);
  while (log->in_flight > 0) pthread_cond_wait(&log->done, &log->lock);
  pthread_mutex_unlock(&log->lock);
  pthread_join(log->thread, NULL); /* it indexes what is still queued first */
  log->closing = true;
  free_log(log);
}

/* --- appends ------------------------------------------------------------------------------- */

/* The time an append spent in the journal — what the acknowledgement waited for. */
static void record_append(vd_decision_log *log, uint64_t start_ns, bool durable) {
  double seconds = (double)(vd_monotonic_ns() - start_ns) / 1e9;
  pthread_mutex_lock(&log->lock);
  record_latency(&log->stats, seconds);
  if (!durable) log->stats.failed++;
  log->in_flight--;
  if (log->stopping && log->in_flight == 0) pthread_cond_broadcast(&log->done);
  pthread_mutex_unlock(&log->lock);
}

/* Why an append cannot be taken now (lock held), or NULL: the log closes, the queue is full
 * (after waiting for space, with the WAIT policy), the file reached max_bytes, or the disk is
 * short of space. `status` gets the append's answer. */
static const char *refusal(vd_decision_log *log, vd_log_status *status, char *fatal) {
  if (queued_rows(log) >= log->config.queue_capacity && !log->stopping &&
      log->config.overload == VD_LOG_OVERLOAD_WAIT) {
    struct timespec deadline;
    abs_deadline(&deadline, vd_wall_us() + (int64_t)log->config.max_wait_ms * 1000);
    while (queued_rows(log) >= log->config.queue_capacity && !log->stopping)
      if (pthread_cond_timedwait(&log->space, &log->lock, &deadline) == ETIMEDOUT) break;
  }
  *status = VD_LOG_CLOSED;
  if (log->stopping) return "decision log is shutting down";
  *status = VD_LOG_OVERLOADED;
  if (queued_rows(log) >= log->config.queue_capacity) {
    log->stats.overloaded++;
    snprintf(fatal, MESSAGE_MAX,
             "decision log overloaded: %zu decisions already wait to be indexed",
             log->config.queue_capacity);
    return fatal;
  }
  *status = VD_LOG_FAILED;
  if (log->full) return log->index_error;
  if (!enough_space(log, fatal)) return fatal;
  return NULL;
}

vd_log_status vd_decision_log_append(vd_decision_log *log, const vd_decision_record *record,
                                     vd_error *err) {
  if (!record || !record->id || !record->id[0] || strlen(record->id) > ID_MAX || !record->kind ||
      !record->kind[0] || !record->trace_json) {
    vd_error_set(err, "decision log: a record needs an id (at most %d bytes), a kind and a trace",
                 ID_MAX);
    return VD_LOG_INVALID;
  }
  if (!log->journal) {
    vd_error_set(err,
                 "decision log %s: another process owns it (a running verdict serve); this "
                 "one only reads",
                 log->path);
    return VD_LOG_FAILED;
  }
  uint64_t start = vd_monotonic_ns();
  int64_t timestamp = record->timestamp_us ? record->timestamp_us : vd_wall_us();
  size_t trace_len = record->trace_len ? record->trace_len : strlen(record->trace_json);
  /* compressed here, before the lock: the writer thread only binds the bytes */
  void *blob = NULL;
  size_t blob_len = 0;
  if (!log->config.uncompressed)
    vd_trace_blob_encode(record->trace_json, trace_len, &blob, &blob_len);
  queued *q = row_of_record(record, timestamp, trace_len, blob, blob_len, err);
  free(blob);
  if (!q) return VD_LOG_FAILED;
  pthread_mutex_lock(&log->lock);
  vd_log_status status = VD_LOG_OK;
  char fatal[MESSAGE_MAX] = "";
  const char *why = refusal(log, &status, fatal);
  vd_error journal_err = {0};
  /* the frame is written under the lock, so the queue's order is the journal's */
  uint64_t position =
      why ? 0 : vd_journal_append(log->journal, q->payload, q->payload_len, &journal_err);
  if (!why && !position) {
    status = VD_LOG_FAILED;
    why = journal_err.message;
  }
  if (why) {
    log->stats.failed += status == VD_LOG_FAILED;
    if (status == VD_LOG_FAILED) log->stats.healthy = false;
    vd_error_set(err, "%s%s%s", status == VD_LOG_FAILED ? log->path : "",
                 status == VD_LOG_FAILED ? ": " : "", why);
    pthread_mutex_unlock(&log->lock);
    free(q);
    return status;
  }
  enqueue(log, q, position);
  log->in_flight++;
  /* the writer thread sleeps until the oldest row is due: wake it for a first row (to set its
   * timer), a full batch, or a reader waiting */
  if (queued_rows(log) == 1 || queued_rows(log) == log->config.max_batch || log->catching_up)
    pthread_cond_signal(&log->work);
  pthread_mutex_unlock(&log->lock);
  bool durable = vd_journal_sync(log->journal, position, &journal_err);
  record_append(log, start, durable);
  if (durable) return VD_LOG_OK;
  /* it is in the journal and will be indexed, but not known to be on the disk: not acknowledged */
  vd_error_set(err, "decision log %s: %s", log->path, journal_err.message);
  return VD_LOG_FAILED;
}

/* Waits until every row queued before the call is indexed, so a read sees every decision
 * acknowledged before it began: the writer thread is asked to index at once, not after its
 * delay (nor its back-off after a failure). False with err when that attempt fails: the rows
 * are safe in the journal, but not readable yet. */
static bool catch_up(vd_decision_log *log, vd_error *err) {
  pthread_mutex_lock(&log->lock);
  uint64_t target = log->appended, failures = log->stats.failed_commits;
  if (log->indexed < target) {
    log->catching_up++;
    pthread_cond_signal(&log->work);
    while (log->indexed < target && log->stats.failed_commits == failures && !log->writer_done)
      pthread_cond_wait(&log->indexed_cond, &log->lock);
    log->catching_up--;
  }
  bool ok = log->indexed >= target;
  if (!ok)
    vd_error_set(err, "decision log %s: %" PRIu64 " acknowledged decisions are not indexed yet: %s",
                 log->path, target - log->indexed, log->index_error);
  pthread_mutex_unlock(&log->lock);
  return ok;
}

bool vd_decision_log_flush(vd_decision_log *log, vd_error *err) { return catch_up(log, err); }

bool vd_decision_log_purge(vd_decision_log *log, int64_t older_than_us, uint64_t *deleted,
                           vd_error *err) {
  purge_request req = {.cutoff_us = older_than_us, .ok = true};
  pthread_mutex_lock(&log->lock);
  if (log->stopping) {
    pthread_mutex_unlock(&log->lock);
    return vd_error_set(err, "decision log is shutting down");
  }
  purge_request **end = &log->purges;
  while (*end) end = &(*end)->next;
  *end = &req;
  pthread_cond_signal(&log->work);
  while (!req.done) pthread_cond_wait(&log->done, &log->lock);
  pthread_mutex_unlock(&log->lock);
  if (deleted) *deleted = req.deleted;
  if (!req.ok) return vd_error_set(err, "decision log %s: %s", log->path, req.message);
  return true;
}

void vd_decision_log_stats_get(vd_decision_log *log, vd_decision_log_stats *out) {
  pthread_mutex_lock(&log->lock);
  *out = log->stats;
  out->wal_frames = atomic_load_explicit(&log->wal_frames, memory_order_relaxed);
  out->wal_bytes = out->wal_frames * log->frame_bytes;
  out->queue_depth = queued_rows(log);
  out->in_flight = log->in_flight;
  out->journal_bytes = log->journal ? vd_journal_bytes(log->journal) : 0;
  pthread_mutex_unlock(&log->lock);
}

/* --- readers ------------------------------------------------------------------------------- */

static reader *acquire_reader(vd_decision_log *log, vd_error *err) {
  pthread_mutex_lock(&log->readers_lock);
  reader *r = log->idle_readers;
  if (r) log->idle_readers = r->next;
  pthread_mutex_unlock(&log->readers_lock);
  if (r) return r;
  r = calloc(1, sizeof *r);
  if (!r) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  /* The busy timeout comes first: preparing reads the schema, and a lock held for a moment
   * elsewhere must be waited out, not answered with a 503. */
  if (sqlite3_open_v2(log->path, &r->db, flags, NULL) != SQLITE_OK ||
      sqlite3_busy_timeout(r->db, (int)log->config.busy_timeout_ms) != SQLITE_OK ||
      sqlite3_prepare_v3(r->db, get_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->get, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(r->db, amendments_sql, -1, SQLITE_PREPARE_PERSISTENT, &r->amendments,
                         NULL) != SQLITE_OK) {
    sqlite_fail(err, r->db, log->path, "cannot open a reader");
    close_reader(r);
    return NULL;
  }
  /* The cache (32 MiB) keeps the interior pages of the id index and the table at 10^7 rows
   * (about 20 MB) while no commit lands in between (a commit makes SQLite drop a reader's cache
   * at its next read), so a cold get reads its two leaf pages only (NO_MMAP_PRAGMA). */
  sqlite3_exec(r->db, NO_MMAP_PRAGMA "; PRAGMA cache_size=-32768", NULL, NULL, NULL);
  return r;
}

static void release_reader(vd_decision_log *log, reader *r) {
  pthread_mutex_lock(&log->readers_lock);
  r->next = log->idle_readers;
  log->idle_readers = r;
  pthread_mutex_unlock(&log->readers_lock);
}

static json_t *parse_json(const char *text, size_t len, const char *what, const char *id,
                          vd_error *err) {
  json_error_t jerr;
  json_t *v = json_loadb(text, len, 0, &jerr);
  if (!v)
    vd_error_set(err, "decision log: the stored %s of decision %s is not JSON: %s", what, id,
                 jerr.text);
  return v;
}

/* The JSON text of the trace in column `column` of st's row: a TEXT value as it is (every row
 * before compression, and traces that did not shrink), a BLOB decoded (vd_trace_blob); *decoded
 * then owns the text (free() it, else it is NULL). *text stays valid until the next step of st
 * or the free. */
static bool stored_trace(const vd_decision_log *log, sqlite3_stmt *st, int column, const char *id,
                         char **decoded, const char **text, size_t *len, vd_error *err) {
  *decoded = NULL;
  if (sqlite3_column_type(st, column) != SQLITE_BLOB) {
    const char *t = (const char *)sqlite3_column_text(st, column);
    *text = t ? t : "";
    *len = (size_t)sqlite3_column_bytes(st, column);
  } else {
    const void *blob = sqlite3_column_blob(st, column);
    size_t blob_len = (size_t)sqlite3_column_bytes(st, column);
    if (!(*decoded = vd_trace_blob_decode(blob, blob_len, len, err))) {
      vd_error_prefix(err, "decision log %s: the stored trace of decision %s cannot be read",
                      log->path, id);
      return false;
    }
    *text = *decoded;
  }
  /* The listing serves the stored text as it is: a damaged or forged row must be an error here,
   * not invalid JSON or extra records in an answer. */
  if (vd_json_check_object(*text, *len, NULL, NULL, NULL, err)) return true;
  vd_error_prefix(err, "decision log %s: the stored trace of decision %s is damaged", log->path,
                  id);
  free(*decoded);
  *decoded = NULL;
  return false;
}

/* Adds the decision's amendments, oldest first, as trace.amendments (absent when none). */
static bool attach_amendments(vd_decision_log *log, reader *r, const char *id, json_t *trace,
                              vd_error *err) {
  sqlite3_bind_text(r->amendments, 1, id, -1, SQLITE_STATIC);
  json_t *list = json_array();
  int rc;
  bool ok = true;
  while ((rc = sqlite3_step(r->amendments)) == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(r->amendments, 1);
    json_t *body = parse_json(text ? text : "", (size_t)sqlite3_column_bytes(r->amendments, 1),
                              "amendment", id, err);
    if (!body) {
      ok = false;
      break;
    }
    char at[40];
    vd_format_rfc3339_us(sqlite3_column_int64(r->amendments, 0), at, sizeof at);
    json_object_set_new(body, "amended_at", json_string(at));
    json_array_append_new(list, body);
  }
  if (ok && rc != SQLITE_DONE) ok = sqlite_fail(err, r->db, log->path, "cannot read amendments");
  sqlite3_reset(r->amendments);
  sqlite3_clear_bindings(r->amendments);
  if (ok && json_array_size(list)) json_object_set(trace, "amendments", list);
  json_decref(list);
  return ok;
}

vd_log_status vd_decision_log_amend(vd_decision_log *log, const char *id, const json_t *amendment,
                                    vd_error *err) {
  if (!id || !id[0] || strlen(id) > ID_MAX || !json_is_object(amendment)) {
    vd_error_set(err, "decision log: an amendment needs a decision id and a JSON object");
    return VD_LOG_INVALID;
  }
  char *body = json_dumps(amendment, JSON_COMPACT | JSON_SORT_KEYS);
  if (!body) {
    vd_error_set(err, "out of memory");
    return VD_LOG_FAILED;
  }
  /* Its own short-lived connection: amendments are rare (one per LLM classification) and must
   * not queue behind, or slow down, the group commits of the hot path. */
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  vd_log_status status = VD_LOG_FAILED;
  if (sqlite3_open_v2(log->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    sqlite_fail(err, db, log->path, "cannot open for an amendment");
    goto done;
  }
  sqlite3_busy_timeout(db, (int)log->config.busy_timeout_ms);
  const char *sync = log->config.durability == VD_DURABILITY_FSYNC ? "PRAGMA synchronous=FULL"
                                                                   : "PRAGMA synchronous=NORMAL";
  if (sqlite3_exec(db, sync, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, amend_sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite_fail(err, db, log->path, "cannot prepare an amendment");
    goto done;
  }
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, vd_wall_us());
  sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE)
    sqlite_fail(err, db, log->path, "cannot store an amendment");
  else
    status = VD_LOG_OK;
done:
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(body);
  return status;
}

bool vd_decision_id_parse(const char *text, size_t len, char id[VD_DECISION_ID_SIZE],
                          vd_error *err) {
  id[0] = '\0';
  if (len == 36) {
    memcpy(id, text, 36);
    id[36] = '\0';
  }
  if (!vd_uuid_valid(id)) {
    char shown[200];
    vd_printable_prefix(text, len, shown, sizeof shown);
    id[0] = '\0';
    return vd_error_set(err,
                        "'%s' is not a decision id (a UUID such as "
                        "01a23d05-78b3-718e-beff-6e5c91252a00)",
                        shown);
  }
  for (char *c = id; *c; c++) *c = (char)tolower((unsigned char)*c);
  return true;
}

/* Reads decision id on reader r: the stored text (*decoded, if any, is the caller's to free)
 * and whether it has amendments. The reader's get statement is left stepped: reset it after. */
static vd_log_status read_decision(vd_decision_log *log, reader *r, const char *id, char **decoded,
                                   const char **text, size_t *len, bool *amended, vd_error *err) {
  *decoded = NULL;
  sqlite3_bind_text(r->get, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(r->get);
  if (rc == SQLITE_DONE) {
    vd_error_set(err, "no decision with id %s", id);
    return VD_LOG_NOT_FOUND;
  }
  if (rc != SQLITE_ROW) {
    sqlite_fail(err, r->db, log->path, "cannot read");
    return VD_LOG_FAILED;
  }
  if (!stored_trace(log, r->get, 0, id, decoded, text, len, err)) return VD_LOG_FAILED;
  sqlite3_bind_text(r->amendments, 1, id, -1, SQLITE_STATIC);
  rc = sqlite3_step(r->amendments);
  sqlite3_reset(r->amendments);
  sqlite3_clear_bindings(r->amendments);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    sqlite_fail(err, r->db, log->path, "cannot read amendments");
    return VD_LOG_FAILED;
  }
  *amended = rc == SQLITE_ROW;
  return VD_LOG_OK;
}

/* The stored text as a tree with its amendments merged in; NULL with err. */
static json_t *trace_tree(vd_decision_log *log, reader *r, const char *id, const char *text,
                          size_t len, bool amended, vd_error *err) {
  json_t *trace = parse_json(text, len, "trace", id, err);
  if (trace && amended && !attach_amendments(log, r, id, trace, err)) {
    json_decref(trace);
    trace = NULL;
  }
  return trace;
}

static vd_log_status out_of_memory(vd_error *err) {
  vd_error_set(err, "out of memory");
  return VD_LOG_FAILED;
}

/* vd_decision_log_get (tree set) and vd_decision_log_get_text (text set): one read of the row. */
static vd_log_status get_decision(vd_decision_log *log, const char *id, json_t **tree,
                                  char **text_out, size_t *len_out, vd_error *err) {
  vd_error behind = {0};
  bool caught_up = catch_up(log, &behind);
  reader *r = acquire_reader(log, err);
  if (!r) return VD_LOG_FAILED;
  char *decoded = NULL;
  const char *text = NULL;
  size_t len = 0;
  bool amended = false;
  vd_log_status status = read_decision(log, r, id, &decoded, &text, &len, &amended, err);
  if (status == VD_LOG_NOT_FOUND && !caught_up) { /* it may be one of those not indexed yet */
    status = VD_LOG_FAILED;
    if (err) *err = behind;
  }
  if (status == VD_LOG_OK && (tree || amended)) {
    json_t *trace = trace_tree(log, r, id, text, len, amended, err);
    if (!trace)
      status = VD_LOG_FAILED;
    else if (tree)
      *tree = trace;
    else if (!(*text_out = vd_json_dumps_shortest(trace, len_out)))
      status = out_of_memory(err);
    if (!tree) json_decref(trace);
  } else if (status == VD_LOG_OK) {
    /* as stored: parsing ~9 KB into a tree only to write it out again was most of a get */
    *text_out = decoded ? decoded : malloc(len + 1);
    if (*text_out && !decoded) {
      memcpy(*text_out, text, len);
      (*text_out)[len] = '\0';
    }
    decoded = NULL;
    *len_out = len;
    if (!*text_out) status = out_of_memory(err);
  }
  free(decoded);
  sqlite3_reset(r->get);
  sqlite3_clear_bindings(r->get);
  release_reader(log, r);
  return status;
}

vd_log_status vd_decision_log_get(vd_decision_log *log, const char *id, json_t **trace,
                                  vd_error *err) {
  *trace = NULL;
  return get_decision(log, id, trace, NULL, NULL, err);
}

vd_log_status vd_decision_log_get_text(vd_decision_log *log, const char *id, char **text,
                                       size_t *len, vd_error *err) {
  *text = NULL;
  *len = 0;
  return get_decision(log, id, NULL, text, len, err);
}

/* The cursor is the (timestamp, id) of the last row returned: 16 hex digits of the timestamp
 * followed by the id's bytes in hex. It is opaque to clients. */
static char *encode_cursor(int64_t ts_us, const char *id) {
  size_t len = strlen(id);
  char *out = malloc(16 + 2 * len + 1);
  if (!out) return NULL;
  snprintf(out, 17, "%016" PRIx64, (uint64_t)ts_us);
  for (size_t i = 0; i < len; i++) snprintf(out + 16 + 2 * i, 3, "%02x", (unsigned char)id[i]);
  return out;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static bool decode_cursor(const char *cursor, int64_t *ts_us, char id[ID_MAX + 1]) {
  size_t len = strlen(cursor);
  if (len < 18 || len % 2 != 0 || (len - 16) / 2 > ID_MAX ||
      strspn(cursor, "0123456789abcdef") != len)
    return false;
  uint64_t ts = 0;
  for (int i = 0; i < 16; i++) ts = (ts << 4) | (uint64_t)hex_digit(cursor[i]);
  *ts_us = (int64_t)ts;
  size_t n = (len - 16) / 2;
  for (size_t i = 0; i < n; i++) {
    int v = hex_digit(cursor[16 + 2 * i]) * 16 + hex_digit(cursor[17 + 2 * i]);
    if (v == 0) return false;
    id[i] = (char)v;
  }
  id[n] = '\0';
  return true;
}

/* Runs a listing query and calls row(ctx, id, trace text, length) for each row of the page,
 * oldest first; row returns false (with err) to stop with a failure. *next_cursor as for the
 * list. */
typedef bool (*list_row_fn)(void *ctx, const char *id, const char *text, size_t len, vd_error *err);

/* Where list_rows hands each row of a page: `row` gets its text; `damaged` (NULL: the listing
 * fails instead) a row whose trace cannot be read, with why; when it returns false the page
 * ends there and `stopped` is set. */
typedef struct list_sink {
  list_row_fn row;
  void *ctx;
  vd_decision_damaged damaged;
  void *damaged_ctx;
  bool stopped;
} list_sink;

static bool list_rows(vd_decision_log *log, const vd_decision_query *q, list_sink *sink,
                      char **next_cursor, vd_error *err) {
  *next_cursor = NULL;
  size_t limit = q->limit ? q->limit : VD_DECISION_LIST_DEFAULT;
  if (limit > VD_DECISION_LIST_MAX)
    return vd_error_field(err, "limit", "limit must be between 1 and %d, got %zu",
                          VD_DECISION_LIST_MAX, q->limit);
  int64_t cursor_ts = 0;
  char cursor_id[ID_MAX + 1] = "";
  bool has_cursor = q->cursor && q->cursor[0];
  if (has_cursor && !decode_cursor(q->cursor, &cursor_ts, cursor_id))
    return vd_error_field(err, "cursor", "not a cursor returned by this server");

  /* Keyset pagination on (ts_us, id): the first condition is an index range, the second skips
   * the rows of the cursor's own timestamp up to and including the cursor's id. */
  char sql[512] = "SELECT ts_us, id, trace FROM decisions WHERE 1";
  if (q->subject_id) strcat(sql, " AND subject_id = ?1");
  /* with a subject, its index is the selective one: "+kind" keeps the planner off the kind index */
  if (q->kind) strcat(sql, q->subject_id ? " AND +kind = ?2" : " AND kind = ?2");
  if (q->has_since) strcat(sql, " AND ts_us >= ?3");
  if (q->has_until) strcat(sql, " AND ts_us < ?4");
  if (has_cursor) strcat(sql, " AND ts_us >= ?5 AND (ts_us > ?5 OR id > ?6)");
  strcat(sql, " ORDER BY ts_us, id LIMIT ?7");

  if (!catch_up(log, err)) return false;
  reader *r = acquire_reader(log, err);
  if (!r) return false;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite_fail(err, r->db, log->path, "cannot query");
    release_reader(log, r);
    return false;
  }
  if (q->subject_id) sqlite3_bind_text(st, 1, q->subject_id, -1, SQLITE_STATIC);
  if (q->kind) sqlite3_bind_text(st, 2, q->kind, -1, SQLITE_STATIC);
  if (q->has_since) sqlite3_bind_int64(st, 3, q->since_us);
  if (q->has_until) sqlite3_bind_int64(st, 4, q->until_us);
  if (has_cursor) {
    sqlite3_bind_int64(st, 5, cursor_ts);
    sqlite3_bind_text(st, 6, cursor_id, -1, SQLITE_STATIC);
  }
  sqlite3_bind_int64(st, 7, (sqlite3_int64)limit + 1); /* one more tells whether a page follows */

  size_t rows = 0;
  int64_t last_ts = 0;
  char last_id[ID_MAX + 1] = "";
  bool ok = true, more = false;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows == limit) {
      more = true;
      break;
    }
    const char *id = (const char *)sqlite3_column_text(st, 1);
    snprintf(last_id, sizeof last_id, "%s", id ? id : "");
    const char *text = NULL;
    char *decoded = NULL;
    size_t len = 0;
    vd_error why = {0};
    if (stored_trace(log, st, 2, last_id, &decoded, &text, &len, &why)) {
      ok = sink->row(sink->ctx, last_id, text, len, err);
    } else if (!sink->damaged) {
      ok = false;
      if (err) *err = why;
    } else {
      sink->stopped = !sink->damaged(sink->damaged_ctx, last_id, &why);
    }
    free(decoded);
    if (!ok || sink->stopped) break;
    last_ts = sqlite3_column_int64(st, 0);
    rows++;
  }
  if (ok && rc != SQLITE_ROW && rc != SQLITE_DONE) {
    sqlite_fail(err, r->db, log->path, "cannot query");
    ok = false;
  }
  sqlite3_finalize(st);
  release_reader(log, r);
  if (ok && more && !(*next_cursor = encode_cursor(last_ts, last_id)))
    ok = vd_error_set(err, "out of memory");
  return ok;
}

static bool add_parsed(void *ctx, const char *id, const char *text, size_t len, vd_error *err) {
  json_t *trace = parse_json(text, len, "trace", id, err);
  if (!trace) return false;
  json_array_append_new(ctx, trace);
  return true;
}

/* A page as a JSON array of the parsed traces (vd_decision_log_list), damaged rows handed to
 * sink's damaged (NULL: they fail the page). */
static bool list_parsed(vd_decision_log *log, const vd_decision_query *q, list_sink *sink,
                        json_t **traces, char **next_cursor, vd_error *err) {
  json_t *list = json_array();
  *traces = NULL;
  if (!list) return vd_error_set(err, "out of memory");
  sink->row = add_parsed;
  sink->ctx = list;
  if (!list_rows(log, q, sink, next_cursor, err)) {
    json_decref(list);
    return false;
  }
  *traces = list;
  return true;
}

bool vd_decision_log_list(vd_decision_log *log, const vd_decision_query *q, json_t **traces,
                          char **next_cursor, vd_error *err) {
  list_sink sink = {0};
  return list_parsed(log, q, &sink, traces, next_cursor, err);
}

typedef struct text_list {
  vd_buf *out;
  size_t rows;
} text_list;

static bool add_text(void *ctx, const char *id, const char *text, size_t len, vd_error *err) {
  text_list *t = ctx;
  /* a page of real traces is a few MB: rows claiming far more (damaged or forged) must not grow
   * one answer without bound */
  if (t->out->len + len > LIST_TEXT_MAX_BYTES)
    return vd_error_set(err,
                        "decision log: the page would exceed %d MiB at decision %s: ask for "
                        "fewer decisions (limit)",
                        LIST_TEXT_MAX_BYTES >> 20, id);
  if (t->rows++) vd_buf_append(t->out, ",", 1);
  vd_buf_append(t->out, text, len);
  return !t->out->oom || vd_error_set(err, "out of memory");
}

bool vd_decision_log_list_text(vd_decision_log *log, const vd_decision_query *q, vd_buf *out,
                               char **next_cursor, vd_error *err) {
  text_list t = {out, 0};
  vd_buf_append(out, "[", 1);
  list_sink sink = {.row = add_text, .ctx = &t};
  if (!list_rows(log, q, &sink, next_cursor, err)) return false;
  vd_buf_append(out, "]", 1);
  return !out->oom || vd_error_set(err, "out of memory");
}

bool vd_decision_log_foreach(vd_decision_log *log, const vd_decision_query *query,
                             vd_decision_visit visit, vd_decision_damaged damaged, void *ctx,
                             vd_error *err) {
  vd_decision_query q = *query;
  if (!q.limit) q.limit = VD_DECISION_LIST_MAX;
  char *cursor = q.cursor && *q.cursor ? strdup(q.cursor) : NULL;
  bool ok = true, more = true;
  while (ok && more) {
    q.cursor = cursor;
    json_t *page = NULL;
    char *next = NULL;
    list_sink sink = {.damaged = damaged, .damaged_ctx = ctx};
    ok = list_parsed(log, &q, &sink, &page, &next, err);
    free(cursor);
    cursor = next;
    more = cursor != NULL && !sink.stopped;
    size_t i;
    json_t *trace;
    json_array_foreach(page, i, trace) {
      if (sink.stopped) break;
      if (visit(ctx, trace)) continue;
      more = false;
      break;
    }
    json_decref(page);
  }
  free(cursor);
  return ok;
}
