/* vd_service: a running `verdict serve` — the HTTP API of DESIGN.md §4 over the deployments, the
 * pipeline, the decision log, auth and metrics.
 *
 * Endpoints and roles:
 *   POST /v1/promotions/score      score       decide, log (committed before the response), answer
 *   GET  /v1/decisions/{id}        compliance  one trace
 *   GET  /v1/decisions?subject=&kind=&since=&until=&limit=&cursor=   compliance  traces, paginated
 *   POST /v1/admin/reload          admin       reload every deployment atomically (422 on errors)
 *   GET  /v1/admin/versions        admin       what is serving
 *   GET  /healthz, /readyz, /metrics   none
 * Errors are {"error": {"code", "message", "field"}} with 4xx/5xx.
 *
 * Ownership: vd_service_start borrows the config (it must outlive the service) and returns a
 * service freed by vd_service_stop. vd_service_reload and vd_service_stop may be called from any
 * thread (the signal loop of `verdict serve`); reloads are serialised.
 */
#ifndef VD_SERVICE_H
#define VD_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "vd_config.h"
#include "vd_error.h"

typedef struct vd_service vd_service;

/* Loads every deployment (a deployment that fails to load is fatal at start), opens the decision
 * log, warms up, and starts listening. events (may be NULL) gets one line per notable event
 * (start, reload, stop). NULL with every error in diags (may be NULL) and a summary in err. */
vd_service *vd_service_start(const vd_config *config, FILE *events, vd_diags *diags, vd_error *err);
/* The port the server listens on. */
int vd_service_port(const vd_service *service);
/* Loads every configured deployment again (rules with their tests, model) and, when all loaded,
 * warms them up and swaps them in at once. On failure nothing changes and diags gets every
 * error. *report (may be NULL) gets {"reloaded": [versions]} on success (new reference). */
bool vd_service_reload(vd_service *service, vd_diags *diags, json_t **report);
/* Graceful stop: readiness goes false, no new connections, requests in flight finish (up to the
 * configured shutdown timeout), the decision log commits what is queued and closes. Frees the
 * service. True when everything in flight finished in time. */
bool vd_service_stop(vd_service *service);

/* The `verdict serve` verb: --config FILE [--listen HOST:PORT] [--data-dir DIR]. Runs until
 * SIGTERM or SIGINT (graceful stop, exit 0); SIGHUP reloads. */
int vd_verb_serve(int argc, char **argv, FILE *out, FILE *err);

#endif
