/* vd_metrics: the server's counters and latency histograms, rendered in the Prometheus text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * Request counts and latencies are kept per endpoint (a fixed set, so a client probing random
 * paths cannot grow the label space) and per status code. Decisions by action, rules fired by id
 * and model fallbacks by reason are labelled counters whose labels come from the loaded rule files
 * and the pipeline; each family holds at most VD_METRICS_MAX_LABELS labels, later ones are counted
 * under "other".
 *
 * Ownership: vd_metrics_new returns a handle the caller frees with vd_metrics_free. Every function
 * is thread-safe; recording never allocates on the hot path after a label was first seen.
 */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_buf.h"
#include "vd_decision_log.h"

enum { VD_METRICS_MAX_LABELS = 512 };

typedef enum vd_endpoint {
  VD_ENDPOINT_SCORE,
  VD_ENDPOINT_DECISION_GET,
  VD_ENDPOINT_DECISION_LIST,
  VD_ENDPOINT_ADMIN_RELOAD,
  VD_ENDPOINT_ADMIN_VERSIONS,
  VD_ENDPOINT_HEALTHZ,
  VD_ENDPOINT_READYZ,
  VD_ENDPOINT_METRICS,
  VD_ENDPOINT_TRIAGE,      /* POST /v1/triage */
  VD_ENDPOINT_ITINERARIES, /* POST /v1/itineraries */
  VD_ENDPOINT_JOB_GET,     /* GET /v1/jobs/{id} */
  VD_ENDPOINT_JOB_EVENTS,  /* GET /v1/jobs/{id}/events (SSE; its latency is time to headers) */
  VD_ENDPOINT_OTHER,       /* unknown paths (404s) and anything not routed */
  VD_ENDPOINT_COUNT
} vd_endpoint;

/* The endpoint's label value as it appears in /metrics ("score", "decision_get", ...). */
const char *vd_endpoint_name(vd_endpoint endpoint);

typedef enum vd_labelled_family {
  VD_FAMILY_DECISIONS,   /* verdict_decisions_total{action=...}: one per candidate result */
  VD_FAMILY_RULES_FIRED, /* verdict_rules_fired_total{rule=...} */
  VD_FAMILY_FALLBACKS,   /* verdict_model_fallbacks_total{reason=...} */
  VD_FAMILY_COUNT
} vd_labelled_family;

typedef struct vd_metrics vd_metrics;

vd_metrics *vd_metrics_new(void);
void vd_metrics_free(vd_metrics *m);

/* One finished HTTP request: its endpoint, status and wall time in nanoseconds. */
void vd_metrics_observe_request(vd_metrics *m, vd_endpoint endpoint, int status, uint64_t ns);
/* Adds `count` to family{label}. */
void vd_metrics_count(vd_metrics *m, vd_labelled_family family, const char *label, uint64_t count);

/* Appends the whole exposition to out, with the decision log's queue and commit figures when log
 * is non-NULL. */
void vd_metrics_render(vd_metrics *m, const vd_decision_log_stats *log, vd_buf *out);

#endif
