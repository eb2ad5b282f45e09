/* vd_decision_log: the durable decision log — one row per decision with its full trace, in SQLite
 * (WAL mode) in the data folder, with indexed columns for id, kind, subject, time and versions.
 *
 * Durability: vd_decision_log_append returns VD_LOG_OK only once the row is in the log's journal
 * (vd_journal.h: DB_PATH.journal-0/-1, one write of the row, in the order of the appends). The
 * log's writer thread then inserts the journaled rows into SQLite in batches — when a batch of
 * max_batch rows is queued, when the oldest has waited 10 ms, or at once when a reader asks —
 * so an SQLite commit (about eight WAL pages whatever its size) is shared by tens to hundreds of
 * decisions instead of being paid by each. Opening the log indexes whatever the journal still
 * holds from before (a killed process); rows indexed already are recognised by their id.
 *   - VD_DURABILITY_NORMAL (default): the journal write is in the kernel's page cache before
 *     append returns: the decision survives the process being killed (SIGKILL, crash, OOM
 *     kill), not a power loss or kernel crash. SQLite runs synchronous=NORMAL.
 *   - VD_DURABILITY_FSYNC: append also waits for an fdatasync of the journal (one sync covers
 *     every append waiting for it), and SQLite runs synchronous=FULL, so a journal file is only
 *     reused once the rows it held are on the disk in SQLite: it also survives power loss.
 *
 * Reads see every decision acknowledged before they began: get, list and foreach first wait
 * for the writer thread to index what is queued (a few ms at most, nothing when it is idle).
 *
 * Overload and failure never lose a decision silently: append returns a distinct status instead —
 * VD_LOG_OVERLOADED when max queue_capacity rows wait to be indexed (policy REJECT: at once;
 * WAIT: after waiting up to max_wait_ms for space) and VD_LOG_FAILED when the journal cannot be
 * written (disk full, I/O error), the file reached max_bytes, or the disk is short of
 * min_free_bytes. The server answers 503 for both; the decision was not acknowledged. When an
 * indexing commit fails (a lock held elsewhere past busy_timeout_ms, an I/O error), its rows stay
 * queued and in the journal, are tried again every 100 ms, and appends go on until the queue is
 * full; a read that needs them meanwhile fails (VD_LOG_FAILED) instead of answering "not found".
 * Decision ids must be unique (the server's are UUIDv7): a second row with a stored id is found
 * only when indexed, and is then counted in `duplicates` and not stored.
 *
 * Checkpoints (copying the WAL back into the database) run on the log's checkpoint thread and
 * connection only, never on a committing thread. Under continuous writes that thread restarts the
 * WAL every ~6,000 pages (25 MB) by holding off commits for the last few pages' copy and syncs
 * (about 1-2 ms); commits wait for it only if the WAL reaches 8,000 pages (33 MB, when the disk
 * cannot keep up), so min_free_bytes (64 MiB) stays twice the largest WAL.
 *
 * Retention: when retention_days > 0 the log's own thread deletes rows whose timestamp is older
 * than that, every retention_interval_ms, in chunks of a few thousand rows, each taken only while
 * no append is queued, so appends never wait behind a long delete.
 *
 * Queries run on reader connections (a pool, one per concurrent reader) separate from the writer:
 * get by id, and list by subject/kind/time range, oldest first, with keyset pagination: an opaque
 * cursor names the last row returned, so pages stay exact under concurrent inserts (no row is
 * repeated or skipped; a decision inserted behind the cursor's position is not seen, one ahead of
 * it shows up on a later page).
 *
 * Storage: each trace is LZ4-compressed on the appending thread, before it queues, into the blob
 * of vd_trace_blob.h (stored as an SQLite BLOB), or kept as JSON TEXT when that does not shrink it
 * or the config says uncompressed. Every reader decodes either form, so logs written before
 * compression (TEXT only) read as they did; the JSON text read back is the text appended.
 *
 * One process writes: the journal is locked (flock) by the process that opened the log first. A
 * second process opening the same log (a CLI while the server runs) reads only; its appends fail.
 *
 * Ownership: vd_decision_log_open returns a handle the caller closes with vd_decision_log_close
 * (which indexes every queued row first, then empties and removes the journal). Records passed to
 * append are borrowed for the call. Returned json_t values and cursor strings belong to the caller
 * (json_decref / free). Every function except close is thread-safe; close must not run concurrently
 * with the others.
 */
#ifndef VD_DECISION_LOG_H
#define VD_DECISION_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_buf.h"
#include "vd_error.h"

typedef enum vd_durability {
  VD_DURABILITY_NORMAL = 0, /* survives process kill */
  VD_DURABILITY_FSYNC = 1,  /* also survives power loss */
} vd_durability;

typedef enum vd_log_overload {
  VD_LOG_OVERLOAD_REJECT = 0, /* queue full: fail at once with VD_LOG_OVERLOADED */
  VD_LOG_OVERLOAD_WAIT = 1,   /* queue full: wait up to max_wait_ms for space, then fail */
} vd_log_overload;

typedef struct vd_decision_log_config {
  const char *path;         /* the SQLite file, e.g. DATA_DIR/decisions.db (created if absent) */
  vd_durability durability; /* default VD_DURABILITY_NORMAL */
  size_t queue_capacity;    /* rows waiting to be indexed before overload; default 4096 */
  size_t max_batch;         /* rows per indexing commit at most; default 512 */
  vd_log_overload overload; /* default VD_LOG_OVERLOAD_REJECT */
  unsigned max_wait_ms;     /* VD_LOG_OVERLOAD_WAIT only; default 100 */
  unsigned busy_timeout_ms; /* how long a commit waits for a lock held elsewhere; default 5000 */
  unsigned retention_days;  /* delete decisions older than this; 0 keeps them forever */
  unsigned retention_interval_ms; /* how often retention runs; default 3600000 (hourly) */
  uint64_t max_bytes;             /* refuse appends once the file is this big; 0 = no limit */
  /* Refuse appends (VD_LOG_FAILED) while the file system holding the log has less free space
   * than this, so the WAL can always be checkpointed back into the database and the log
   * recovers by itself when space returns; default 64 MiB, twice the largest WAL (0 takes the
   * default). Checked once per 100 ms or 4 MiB of WAL written, and at every commit after a
   * refusal. */
  uint64_t min_free_bytes;
  /* Store traces as plain JSON TEXT (readable with the sqlite3 CLI) instead of LZ4-compressed
   * blobs (vd_trace_blob.h: about a third of the bytes, so fewer WAL frames and pages a
   * decision). Readers take either form, whatever the setting: default false (compress). */
  bool uncompressed;
  /* A tool beside a server that may be running (verdict replay, explain, shadow): when no
   * process owns the journal, the log indexes what it holds and lets it go at open; otherwise it
   * reads the index only. Either way its appends fail. The server's log (false) owns the
   * journal, waiting up to busy_timeout_ms for a tool to let it go, else open fails. */
  bool shared_reader;
} vd_decision_log_config;

typedef enum vd_log_status {
  VD_LOG_OK = 0,
  VD_LOG_OVERLOADED, /* the queue is full: not stored, answer 503 */
  VD_LOG_FAILED,     /* not stored (disk, I/O, full), or a read cannot see it yet: answer 503 */
  VD_LOG_DUPLICATE,  /* unused since appends are journaled: duplicates are counted in stats */
  VD_LOG_INVALID,    /* the record lacks id, kind or trace */
  VD_LOG_CLOSED,     /* the log is shutting down */
  VD_LOG_NOT_FOUND,  /* get: no decision with this id */
} vd_log_status;

/* "ok", "overloaded", "failed", ... (for logs and metrics). */
const char *vd_log_status_name(vd_log_status status);

/* One decision. Strings are borrowed for the duration of the append call. */
typedef struct vd_decision_record {
  const char *id;              /* required, unique (a UUIDv7) */
  const char *kind;            /* required: "promotions", "triage" */
  const char *subject_id;      /* may be NULL */
  int64_t timestamp_us;        /* Unix microseconds; 0 = now */
  const char *ruleset_version; /* may be NULL */
  const char *model_version;   /* may be NULL */
  const char *trace_json;      /* required: the full trace, serialised JSON */
  size_t trace_len;            /* bytes of trace_json; 0 = strlen */
} vd_decision_record;

typedef struct vd_decision_log vd_decision_log;

/* Opens (creating if needed) the log and starts its retention and checkpoint threads. NULL with err
 * when the file cannot be opened for writing (missing or read-only folder, not a database, ...). */
vd_decision_log *vd_decision_log_open(const vd_decision_log_config *config, vd_error *err);
/* Waits for every queued append to commit, stops the log's threads, checkpoints the WAL and
 * frees the handle. */
void vd_decision_log_close(vd_decision_log *log);

/* Stores one decision; returns once it is in the journal (see the top of this file). */
vd_log_status vd_decision_log_append(vd_decision_log *log, const vd_decision_record *record,
                                     vd_error *err);

/* A decision id as a user types it (the API's path, verdict explain|replay): exactly one UUID,
 * nothing before, after or inside it, in either case. Writes the stored (lower-case) form to id
 * and returns true; else false with err "'TEXT' is not a decision id (a UUID such as ...)" (the
 * API's 400 and the CLI's usage error say the same). */
enum { VD_DECISION_ID_SIZE = 37 };
bool vd_decision_id_parse(const char *text, size_t len, char id[VD_DECISION_ID_SIZE],
                          vd_error *err);

/* The trace of decision `id`: VD_LOG_OK with *trace set (a new reference), VD_LOG_NOT_FOUND, or
 * VD_LOG_FAILED with err — also when the stored trace is damaged (err names the decision and
 * what is wrong with it). */
vd_log_status vd_decision_log_get(vd_decision_log *log, const char *id, json_t **trace,
                                  vd_error *err);
/* The same trace as JSON text, what GET /v1/decisions/{id} serves: the stored text as it is
 * (checked to be one JSON object, as the listing serves it) when the decision has no amendments;
 * with amendments, vd_decision_log_get's tree written with vd_json_dumps_shortest. *text is
 * malloc'ed (the caller frees it), *len its length. Statuses as vd_decision_log_get. */
vd_log_status vd_decision_log_get_text(vd_decision_log *log, const char *id, char **text,
                                       size_t *len, vd_error *err);

/* Appends an amendment to decision `id` — a later fact about it, e.g. the LLM classification of
 * a triage request whose route was provisional — without ever changing the stored trace:
 * amendments are append-only rows of their own, committed before this returns (VD_LOG_OK), and
 * vd_decision_log_get returns them with the trace as "amendments": [{...amendment,
 * "amended_at": RFC 3339}], oldest first. The decision need not be stored yet (an amendment may
 * race its decision's commit); amendments are not listed by vd_decision_log_list and retention
 * does not delete them. amendment is borrowed. VD_LOG_INVALID for a bad id or a non-object. */
vd_log_status vd_decision_log_amend(vd_decision_log *log, const char *id, const json_t *amendment,
                                    vd_error *err);

enum { VD_DECISION_LIST_DEFAULT = 100, VD_DECISION_LIST_MAX = 1000 };

typedef struct vd_decision_query {
  const char *subject_id; /* NULL: any */
  const char *kind;       /* NULL: any */
  bool has_since;         /* since_us applies (any value, 0 = 1970-01-01T00:00:00Z included) */
  int64_t since_us;       /* inclusive lower bound on the timestamp */
  bool has_until;         /* until_us applies */
  int64_t until_us;       /* exclusive upper bound */
  size_t limit;           /* 0: VD_DECISION_LIST_DEFAULT; more than the max is an error */
  const char *cursor;     /* NULL or "" for the first page; else a previous next_cursor */
} vd_decision_query;

/* Lists matching traces oldest first (by timestamp, then id) into *traces (a new JSON array).
 * *next_cursor is set to a malloc'ed cursor when the page is full (more rows may follow), else
 * NULL. False with err (err->field names the parameter) for a bad cursor or limit, or a read
 * failure. Use a cursor with the same filters it came from. */
bool vd_decision_log_list(vd_decision_log *log, const vd_decision_query *query, json_t **traces,
                          char **next_cursor, vd_error *err);

/* The same page as vd_decision_log_list, as the text of a JSON array of the stored traces,
 * appended to out (the caller's buffer) without parsing them: what the HTTP listing serves. The
 * stored text is what the writer produced (compact, shortest reals). */
bool vd_decision_log_list_text(vd_decision_log *log, const vd_decision_query *query, vd_buf *out,
                               char **next_cursor, vd_error *err);

/* Calls visit(ctx, trace) for every decision matching query (subject, kind, since, until),
 * oldest first, reading keyset-paged (vd_decision_log_list) with query->limit rows a page
 * (0: VD_DECISION_LIST_MAX) from query->cursor on. trace is borrowed for the call. visit returns
 * false to stop early (then this returns true). A stored row that cannot be read (damaged:
 * vd_decision_log_get's errors) goes to damaged(ctx, id, why), which returns false to stop, and
 * the others go on; without damaged (NULL) it fails the call. damaged is called while a page is
 * read, so before visit sees that page's good rows. False with err when a page cannot be read. */
typedef bool (*vd_decision_visit)(void *ctx, const json_t *trace);
typedef bool (*vd_decision_damaged)(void *ctx, const char *id, const vd_error *why);
bool vd_decision_log_foreach(vd_decision_log *log, const vd_decision_query *query,
                             vd_decision_visit visit, vd_decision_damaged damaged, void *ctx,
                             vd_error *err);

/* Waits until every decision acknowledged so far is indexed (the reads do this themselves):
 * for tools and tests that read the SQLite file directly. False with err when indexing fails
 * now (the decisions stay in the journal and are indexed once it works again). */
bool vd_decision_log_flush(vd_decision_log *log, vd_error *err);

/* Deletes decisions with a timestamp before older_than_us now (the log's thread does it, between
 * append batches); *deleted (may be NULL) gets the count. */
bool vd_decision_log_purge(vd_decision_log *log, int64_t older_than_us, uint64_t *deleted,
                           vd_error *err);

/* Commit latency histogram bounds, in seconds (Prometheus-style "le" buckets; a last bucket
 * counts everything slower). */
enum { VD_LOG_LATENCY_BUCKETS = 12 };
extern const double vd_decision_log_latency_bounds[VD_LOG_LATENCY_BUCKETS];

typedef struct vd_decision_log_stats {
  uint64_t queue_depth;    /* rows journaled, not yet indexed */
  uint64_t in_flight;      /* appends inside vd_decision_log_append now, past the journal write */
  uint64_t queue_capacity; /* the configured bound */
  uint64_t committed;      /* rows indexed since open */
  uint64_t batches;        /* indexing commits tried since open */
  uint64_t max_batch;      /* the largest batch so far */
  uint64_t overloaded;     /* appends refused with VD_LOG_OVERLOADED */
  uint64_t failed;         /* appends that got VD_LOG_FAILED */
  uint64_t failed_commits; /* indexing transactions that failed (their rows are tried again) */
  uint64_t duplicates;     /* rows not stored: their id was stored already */
  uint64_t purged;         /* rows deleted by retention and purge */
  uint64_t replayed;       /* rows found in the journal at open (indexed then, if not yet) */
  uint64_t replay_expired; /* ... of them older than retention_days: not indexed again */
  uint64_t journal_unreadable;    /* journal frames that did not read as rows: set aside in
                                   * DB_PATH.journal-unreadable */
  uint64_t journal_damaged_bytes; /* bytes of the journal skipped as damage at open */
  /* The checkpointer's WAL restarts: each time it held the commits to copy the WAL's last pages
   * (see "checkpoints" in vd_decision_log.c), how long, and whether the WAL then starts over. */
  uint64_t checkpoint_passes; /* checkpoints run alongside the commits (one per ~1000 pages) */
  uint64_t checkpoint_holds;
  uint64_t wal_restarts;
  double checkpoint_hold_seconds_sum;
  double checkpoint_hold_seconds_max;
  double commit_seconds_sum; /* the appends' journal writes (commit_latency's sum) */
  double index_seconds_sum;  /* time spent in the writer thread's indexing commits (batches) */
  uint64_t journal_bytes;    /* the journal's files now */
  /* What the committed rows cost the WAL: frames (pages) written by the log's commits and their
   * bytes (frame header included), and the traces' JSON bytes against what was stored for them
   * (compressed blob or text). Per decision: wal_frames / committed, and so on. */
  uint64_t wal_frames;
  uint64_t wal_bytes;
  uint64_t trace_bytes;
  uint64_t stored_trace_bytes;
  uint64_t compressed; /* rows whose trace was stored compressed */
  /* appends by the time their journal write (and sync) took — what an acknowledgement waits for:
   * [i] counts those <= bounds[i] and > bounds[i-1]; the last, slower ones */
  uint64_t commit_latency[VD_LOG_LATENCY_BUCKETS + 1];
  bool fsync;   /* the writer connection runs synchronous=FULL */
  bool healthy; /* the last journal write and indexing commit succeeded (or none was tried) */
} vd_decision_log_stats;

void vd_decision_log_stats_get(vd_decision_log *log, vd_decision_log_stats *out);

#endif
