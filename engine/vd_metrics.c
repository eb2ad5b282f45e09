#include "vd_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets in seconds: the hot path is sub-millisecond, so most resolution sits there. */
static const double bucket_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                       0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                       0.5,     1.0,    2.5,     5.0,    10.0};
enum { BUCKETS = sizeof bucket_bounds / sizeof bucket_bounds[0] };

/* Status codes the server produces; anything else lands in the last slot ("other"). */
static const int known_statuses[] = {200, 202, 204, 400, 401, 403, 404, 405, 408,
                                     409, 413, 415, 422, 429, 431, 500, 503, 504};
enum { STATUSES = sizeof known_statuses / sizeof known_statuses[0] + 1 };

static const char *const endpoint_names[VD_ENDPOINT_COUNT] = {
    "score",   "decision_get", "decision_list", "admin_reload", "admin_versions",
    "healthz", "readyz",       "metrics",       "triage",       "itineraries",
    "job_get", "job_events",   "other"};

typedef struct histogram {
  atomic_uint_fast64_t buckets[BUCKETS + 1]; /* non-cumulative; the last one is +Inf */
  atomic_uint_fast64_t sum_ns;
} histogram;

typedef struct labelled {
  char *label;
  atomic_uint_fast64_t value;
} labelled;

typedef struct family {
  pthread_rwlock_t lock;                     /* guards the label table; values are atomics */
  labelled items[VD_METRICS_MAX_LABELS + 1]; /* the extra slot is "other" */
  size_t count;
} family;

struct vd_metrics {
  atomic_uint_fast64_t requests[VD_ENDPOINT_COUNT][STATUSES];
  histogram latency[VD_ENDPOINT_COUNT];
  family families[VD_FAMILY_COUNT];
};

static const char *const family_names[VD_FAMILY_COUNT] = {
    "verdict_decisions_total", "verdict_rules_fired_total", "verdict_model_fallbacks_total"};
static const char *const family_label_keys[VD_FAMILY_COUNT] = {"action", "rule", "reason"};
static const char *const family_help[VD_FAMILY_COUNT] = {
    "Candidate results by final action.", "Rules that matched, by rule id.",
    "Decisions that fell back to rules only, by reason."};

const char *vd_endpoint_name(vd_endpoint endpoint) {
  return endpoint < VD_ENDPOINT_COUNT ? endpoint_names[endpoint] : "other";
}

vd_metrics *vd_metrics_new(void) {
  vd_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  for (int f = 0; f < VD_FAMILY_COUNT; f++) pthread_rwlock_init(&m->families[f].lock, NULL);
  return m;
}

void vd_metrics_free(vd_metrics *m) {
  if (!m) return;
  for (int f = 0; f < VD_FAMILY_COUNT; f++) {
    for (size_t i = 0; i < m->families[f].count; i++) free(m->families[f].items[i].label);
    pthread_rwlock_destroy(&m->families[f].lock);
  }
  free(m);
}

static size_t status_slot(int status) {
  for (size_t i = 0; i < STATUSES - 1; i++)
    if (known_statuses[i] == status) return i;
  return STATUSES - 1;
}

void vd_metrics_observe_request(vd_metrics *m, vd_endpoint endpoint, int status, uint64_t ns) {
  if (endpoint >= VD_ENDPOINT_COUNT) endpoint = VD_ENDPOINT_OTHER;
  atomic_fetch_add_explicit(&m->requests[endpoint][status_slot(status)], 1, memory_order_relaxed);
  histogram *h = &m->latency[endpoint];
  double seconds = (double)ns / 1e9;
  size_t b = 0;
  while (b < BUCKETS && seconds > bucket_bounds[b]) b++;
  atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static labelled *find_label(family *f, const char *label) {
  for (size_t i = 0; i < f->count; i++)
    if (strcmp(f->items[i].label, label) == 0) return &f->items[i];
  return NULL;
}

void vd_metrics_count(vd_metrics *m, vd_labelled_family which, const char *label, uint64_t count) {
  if (which >= VD_FAMILY_COUNT || !label) return;
  family *f = &m->families[which];
  pthread_rwlock_rdlock(&f->lock);
  labelled *item = find_label(f, label);
  pthread_rwlock_unlock(&f->lock);
  if (!item) {
    pthread_rwlock_wrlock(&f->lock);
    item = find_label(f, label);
    if (!item && f->count < VD_METRICS_MAX_LABELS) {
      char *copy = strdup(label);
      if (copy) {
        item = &f->items[f->count];
        item->label = copy;
        atomic_init(&item->value, 0);
        f->count++;
      }
    }
    if (!item) item = &f->items[VD_METRICS_MAX_LABELS]; /* "other" */
    pthread_rwlock_unlock(&f->lock);
  }
  /* Items never move once added (fixed array), so the pointer stays valid without the lock. */
  atomic_fetch_add_explicit(&item->value, count, memory_order_relaxed);
}

/* Label values are escaped as the exposition format requires: backslash, quote, newline. */
static void put_label_value(vd_buf *out, const char *s) {
  for (; *s; s++) {
    if (*s == '\\')
      vd_buf_puts(out, "\\\\");
    else if (*s == '"')
      vd_buf_puts(out, "\\\"");
    else if (*s == '\n')
      vd_buf_puts(out, "\\n");
    else
      vd_buf_append(out, s, 1);
  }
}

static void render_requests(vd_metrics *m, vd_buf *out) {
  vd_buf_puts(out,
              "# HELP verdict_http_requests_total HTTP requests by endpoint and status code.\n"
              "# TYPE verdict_http_requests_total counter\n");
  for (int e = 0; e < VD_ENDPOINT_COUNT; e++)
    for (size_t s = 0; s < STATUSES; s++) {
      uint64_t v = atomic_load_explicit(&m->requests[e][s], memory_order_relaxed);
      if (!v) continue;
      if (s == STATUSES - 1)
        vd_buf_printf(out, "verdict_http_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
                      endpoint_names[e], (unsigned long long)v);
      else
        vd_buf_printf(out, "verdict_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                      endpoint_names[e], known_statuses[s], (unsigned long long)v);
    }
  vd_buf_puts(out,
              "# HELP verdict_http_request_duration_seconds Time from the first byte of a request "
              "to its response being queued.\n"
              "# TYPE verdict_http_request_duration_seconds histogram\n");
  for (int e = 0; e < VD_ENDPOINT_COUNT; e++) {
    histogram *h = &m->latency[e];
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= BUCKETS; b++) {
      cumulative += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
      if (b < BUCKETS)
        vd_buf_printf(out,
                      "verdict_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
                      "%llu\n",
                      endpoint_names[e], bucket_bounds[b], (unsigned long long)cumulative);
      else
        vd_buf_printf(out,
                      "verdict_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} "
                      "%llu\n",
                      endpoint_names[e], (unsigned long long)cumulative);
    }
    uint64_t sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    vd_buf_printf(out, "verdict_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
                  endpoint_names[e], (double)sum_ns / 1e9);
    vd_buf_printf(out, "verdict_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                  endpoint_names[e], (unsigned long long)cumulative);
  }
}

static void render_family(vd_metrics *m, int which, vd_buf *out) {
  family *f = &m->families[which];
  vd_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", family_names[which], family_help[which],
                family_names[which]);
  pthread_rwlock_rdlock(&f->lock);
  for (size_t i = 0; i <= VD_METRICS_MAX_LABELS; i++) {
    if (i >= f->count && i != VD_METRICS_MAX_LABELS) continue;
    uint64_t v = atomic_load_explicit(&f->items[i].value, memory_order_relaxed);
    if (i == VD_METRICS_MAX_LABELS && !v) continue;
    vd_buf_printf(out, "%s{%s=\"", family_names[which], family_label_keys[which]);
    put_label_value(out, i < f->count ? f->items[i].label : "other");
    vd_buf_printf(out, "\"} %llu\n", (unsigned long long)v);
  }
  pthread_rwlock_unlock(&f->lock);
}

static void render_log(const vd_decision_log_stats *log, vd_buf *out) {
  vd_buf_printf(
      out,
      "# HELP verdict_decision_log_queue_depth Decisions journaled, not yet indexed.\n"
      "# TYPE verdict_decision_log_queue_depth gauge\n"
      "verdict_decision_log_queue_depth %llu\n"
      "# HELP verdict_decision_log_queue_capacity Decisions the queue holds at most.\n"
      "# TYPE verdict_decision_log_queue_capacity gauge\n"
      "verdict_decision_log_queue_capacity %llu\n"
      "# HELP verdict_decision_log_committed_total Decisions indexed (in decisions.db).\n"
      "# TYPE verdict_decision_log_committed_total counter\n"
      "verdict_decision_log_committed_total %llu\n"
      "# HELP verdict_decision_log_refused_total Appends refused, by why.\n"
      "# TYPE verdict_decision_log_refused_total counter\n"
      "verdict_decision_log_refused_total{reason=\"overloaded\"} %llu\n"
      "verdict_decision_log_refused_total{reason=\"failed\"} %llu\n"
      "verdict_decision_log_refused_total{reason=\"duplicate\"} %llu\n"
      "# HELP verdict_decision_log_healthy 1 when the last journal write and indexing commit "
      "succeeded.\n"
      "# TYPE verdict_decision_log_healthy gauge\n"
      "verdict_decision_log_healthy %d\n"
      "# HELP verdict_decision_log_commit_seconds Time an append took to be durable (its "
      "journal write): what a response waits for.\n"
      "# TYPE verdict_decision_log_commit_seconds histogram\n",
      (unsigned long long)log->queue_depth, (unsigned long long)log->queue_capacity,
      (unsigned long long)log->committed, (unsigned long long)log->overloaded,
      (unsigned long long)log->failed, (unsigned long long)log->duplicates, log->healthy ? 1 : 0);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < VD_LOG_LATENCY_BUCKETS; b++) {
    cumulative += log->commit_latency[b];
    vd_buf_printf(out, "verdict_decision_log_commit_seconds_bucket{le=\"%g\"} %llu\n",
                  vd_decision_log_latency_bounds[b], (unsigned long long)cumulative);
  }
  cumulative += log->commit_latency[VD_LOG_LATENCY_BUCKETS];
  vd_buf_printf(out,
                "verdict_decision_log_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
                "verdict_decision_log_commit_seconds_sum %.9f\n"
                "verdict_decision_log_commit_seconds_count %llu\n",
                (unsigned long long)cumulative, log->commit_seconds_sum,
                (unsigned long long)cumulative);
  vd_buf_printf(out,
                "# HELP verdict_decision_log_checkpoint_holds_total Times the checkpointer held "
                "the commits to start the WAL over.\n"
                "# TYPE verdict_decision_log_checkpoint_holds_total counter\n"
                "verdict_decision_log_checkpoint_holds_total %llu\n"
                "# HELP verdict_decision_log_wal_restarts_total Holds after which the WAL started "
                "over.\n"
                "# TYPE verdict_decision_log_wal_restarts_total counter\n"
                "verdict_decision_log_wal_restarts_total %llu\n"
                "# HELP verdict_decision_log_checkpoint_hold_seconds_sum Time commits were held.\n"
                "# TYPE verdict_decision_log_checkpoint_hold_seconds_sum counter\n"
                "verdict_decision_log_checkpoint_hold_seconds_sum %.9f\n"
                "# HELP verdict_decision_log_checkpoint_hold_seconds_max The longest hold.\n"
                "# TYPE verdict_decision_log_checkpoint_hold_seconds_max gauge\n"
                "verdict_decision_log_checkpoint_hold_seconds_max %.9f\n",
                (unsigned long long)log->checkpoint_holds, (unsigned long long)log->wal_restarts,
                log->checkpoint_hold_seconds_sum, log->checkpoint_hold_seconds_max);
  vd_buf_printf(out,
                "# HELP verdict_decision_log_wal_frames_total WAL frames (pages) the commits "
                "wrote.\n"
                "# TYPE verdict_decision_log_wal_frames_total counter\n"
                "verdict_decision_log_wal_frames_total %llu\n"
                "# HELP verdict_decision_log_wal_bytes_total Bytes of those frames, headers "
                "included.\n"
                "# TYPE verdict_decision_log_wal_bytes_total counter\n"
                "verdict_decision_log_wal_bytes_total %llu\n"
                "# HELP verdict_decision_log_trace_bytes_total Trace bytes of the committed "
                "decisions: as JSON, and as stored (LZ4 or text).\n"
                "# TYPE verdict_decision_log_trace_bytes_total counter\n"
                "verdict_decision_log_trace_bytes_total{form=\"json\"} %llu\n"
                "verdict_decision_log_trace_bytes_total{form=\"stored\"} %llu\n",
                (unsigned long long)log->wal_frames, (unsigned long long)log->wal_bytes,
                (unsigned long long)log->trace_bytes, (unsigned long long)log->stored_trace_bytes);
  vd_buf_printf(out,
                "# HELP verdict_decision_log_batches_total Indexing commits (committed / batches: "
                "decisions per commit).\n"
                "# TYPE verdict_decision_log_batches_total counter\n"
                "verdict_decision_log_batches_total %llu\n"
                "# HELP verdict_decision_log_index_seconds_total Time spent in indexing commits.\n"
                "# TYPE verdict_decision_log_index_seconds_total counter\n"
                "verdict_decision_log_index_seconds_total %.9f\n"
                "# HELP verdict_decision_log_journal_bytes The journal's files now.\n"
                "# TYPE verdict_decision_log_journal_bytes gauge\n"
                "verdict_decision_log_journal_bytes %llu\n"
                "# HELP verdict_decision_log_replayed_total Decisions found in the journal at "
                "start.\n"
                "# TYPE verdict_decision_log_replayed_total counter\n"
                "verdict_decision_log_replayed_total %llu\n"
                "# HELP verdict_decision_log_journal_unreadable_total Journal frames at start that "
                "did not read as decisions (set aside in decisions.db.journal-unreadable).\n"
                "# TYPE verdict_decision_log_journal_unreadable_total counter\n"
                "verdict_decision_log_journal_unreadable_total %llu\n"
                "# HELP verdict_decision_log_journal_damaged_bytes Journal bytes skipped as damage "
                "at start.\n"
                "# TYPE verdict_decision_log_journal_damaged_bytes gauge\n"
                "verdict_decision_log_journal_damaged_bytes %llu\n",
                (unsigned long long)log->batches, log->index_seconds_sum,
                (unsigned long long)log->journal_bytes, (unsigned long long)log->replayed,
                (unsigned long long)log->journal_unreadable,
                (unsigned long long)log->journal_damaged_bytes);
}

void vd_metrics_render(vd_metrics *m, const vd_decision_log_stats *log, vd_buf *out) {
  render_requests(m, out);
  for (int f = 0; f < VD_FAMILY_COUNT; f++) render_family(m, f, out);
  if (log) render_log(log, out);
}
