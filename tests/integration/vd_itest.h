/* Helpers for the integration tests: run the real `verdict serve` (VERDICT_EXE) as a child on a
 * free loopback port with a temporary data folder and deployment copy, and call it over HTTP with
 * libcurl.
 *
 * Ownership: a vd_itest_server owns its child process and temporary folder (vd_itest_cleanup
 * removes the folder); responses own their body and json (vd_itest_response_free). */
#ifndef VD_ITEST_H
#define VD_ITEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct vd_itest_server {
  char root[256];       /* temporary folder: config, deployment copy, data */
  char config[320];     /* root/verdict.yaml */
  char deployment[320]; /* root/promotions (a copy of examples/promotions) */
  char data_dir[320];   /* root/data */
  pid_t pid;
  int port;
  int stdout_fd; /* the child's stdout (its first line names the port) */
  /* When set (after vd_itest_prepare, before vd_itest_start), the child's stderr is appended to
   * this file instead of the test's stderr (to check what the server logs). */
  char stderr_path[320];
  /* When set, the server is reached over HTTPS and its certificate is checked against this CA
   * file (the config must name tls_cert/tls_key). */
  char ca_file[320];
} vd_itest_server;

/* Creates the temp folder with a copy of examples/promotions and a config serving it, with the
 * demo keys. extra_config (may be NULL) is appended to the config (e.g. a limits: block). */
bool vd_itest_prepare(vd_itest_server *s, const char *extra_config);
/* vd_itest_prepare plus a copy of examples/triage (root/triage) served too, and an `llm:` section
 * whose providers are one fake at llm_base_url (tests/support/vd_fake_provider.h; its key env var
 * VD_ITEST_FAKE_KEY is set), the shipped prompts, catalogue and gazetteer, one attempt per job, no
 * cache, queue_capacity jobs. */
bool vd_itest_prepare_triage(vd_itest_server *s, const char *llm_base_url, int queue_capacity);
/* The same with keys (a `keys:` YAML block) instead of the demo keys. */
bool vd_itest_prepare_keys(vd_itest_server *s, const char *keys, const char *extra_config);
/* Starts `verdict serve` on 127.0.0.1:0 and waits until /readyz answers 200 (up to 30 s). */
bool vd_itest_start(vd_itest_server *s);
/* Sends sig and waits for the child; returns its exit status (128+signal when killed), -1 on
 * error. */
int vd_itest_stop(vd_itest_server *s, int sig);
/* Removes the temporary folder (after the child stopped). */
void vd_itest_cleanup(vd_itest_server *s);

typedef struct vd_itest_response {
  long status;
  char *body;
  size_t size;
  json_t *json; /* the parsed body, or NULL when it is not JSON */
  char content_type[128];
} vd_itest_response;

/* One request (a fresh connection unless handle reuse is asked for by the caller's thread).
 * key NULL sends no Authorization header; body NULL sends none. status 0 = transport error. */
vd_itest_response vd_itest_call(const vd_itest_server *s, const char *method, const char *path,
                                const char *key, const char *body, size_t size);
/* The same with an explicit Content-Type for the body (NULL: none). */
vd_itest_response vd_itest_call_typed(const vd_itest_server *s, const char *method,
                                      const char *path, const char *key, const char *content_type,
                                      const char *body, size_t size);
void vd_itest_response_free(vd_itest_response *r);

/* The demo customer's scoring body (a Rural web shopper the example deployment offers to) with
 * the given subject id, in buf (size bytes; 512 are enough). Returns buf. */
const char *vd_itest_customer(const char *subject_id, char *buf, size_t size);
/* A fixture's start: vd_itest_prepare (no extra config) and vd_itest_start, then the demo
 * customer scored once as subject_id, its decision id copied to decision_id (size bytes). false
 * (after printing why) when any step fails. */
bool vd_itest_start_with_decision(vd_itest_server *s, const char *subject_id, char *decision_id,
                                  size_t size);
/* A fixture's end: SIGTERM (false unless it exits 0), then vd_itest_cleanup. */
bool vd_itest_finish(vd_itest_server *s);
/* GET path with the demo compliance key. */
vd_itest_response vd_itest_get_compliance(const vd_itest_server *s, const char *path);
/* True once GET /v1/decisions/{id} answers 200: the decision is indexed in decisions.db (a
 * read makes the server index what is queued), for tests that open the file directly. */
bool vd_itest_indexed(const vd_itest_server *s, const char *decision_id);
/* error.<key> of a JSON error answer as a string (borrowed from r), or NULL. */
const char *vd_itest_error_string(const vd_itest_response *r, const char *key);

/* The request body for a Hillstrom CSV row (recency,history_segment,history,mens,womens,zip_code,
 * newbie,channel,...) as subject fields, plus the marketing fields the schema requires. Caller
 * frees. */
char *vd_itest_hillstrom_request(const char *csv_line, int row);
/* Reads up to max data rows of the shared Hillstrom file into lines (caller frees each and the
 * array). Returns the count, 0 when the file is absent (the caller skips). */
size_t vd_itest_hillstrom_rows(size_t max, char ***lines);

#endif
