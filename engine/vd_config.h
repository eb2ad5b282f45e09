/* vd_config: the `verdict serve` configuration file (YAML, see examples/verdict.yaml).
 *
 * Every mistake in the file is reported as file:line:col with what was expected; unknown keys are
 * errors too (a misspelt limit must not silently fall back to its default). Relative paths in the
 * file (data_dir, deployments, mask_key_file, tls_cert, tls_key, decision_log.path) are resolved
 * against the folder holding the config file, so a config works from any working directory.
 *
 * vd_config is a plain record of settings (no behaviour, no invariants beyond those checked at
 * load), so its fields are public. Ownership: vd_config_load returns a config the caller frees with
 * vd_config_free; every string and array in it belongs to the config.
 */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_decision_log.h"
#include "vd_error.h"
#include "vd_hash.h"

/* Roles an API key can carry; each endpoint requires one. */
typedef enum vd_role {
  VD_ROLE_SCORE = 1u << 0,      /* scoring, triage, itineraries, jobs */
  VD_ROLE_COMPLIANCE = 1u << 1, /* decisions and explanations */
  VD_ROLE_ADMIN = 1u << 2,      /* reload, versions */
} vd_role;

/* "score", "compliance", "admin". */
const char *vd_role_name(vd_role role);

typedef struct vd_config_key {
  char *name;                      /* who the key belongs to (logged, never the secret) */
  char sha256[VD_SHA256_HEX_SIZE]; /* lowercase hex SHA-256 of the secret key */
  unsigned roles;                  /* vd_role bits */
} vd_config_key;

typedef struct vd_config_limits {
  unsigned threads;                /* HTTP worker threads; 0 = four per online core */
  unsigned max_connections;        /* concurrent connections */
  unsigned max_connections_per_ip; /* concurrent connections from one address; 0 = no cap */
  unsigned connection_timeout_s;   /* idle keep-alive connections are closed after this */
  unsigned request_timeout_ms;     /* a request body must arrive within this */
  unsigned shutdown_timeout_ms;    /* SIGTERM waits this long for requests in flight */
  size_t max_body_bytes;           /* larger bodies get 413 */
  size_t max_header_bytes;         /* larger headers get 431 */
  unsigned max_results;   /* cap on a request's `max_results` (0 = none beyond deployments') */
  unsigned time_slice_us; /* the HTTP threads' scheduler slice (vd_slice.h); 0 = the kernel's */
} vd_config_limits;

typedef struct vd_config {
  char *path;        /* the file it was loaded from */
  char *listen_host; /* "127.0.0.1", "::1", "0.0.0.0" ... */
  int listen_port;
  char *data_dir;
  char **deployments; /* deployment folders (each holds deployment.yaml) */
  size_t deployment_count;
  vd_config_key *keys;
  size_t key_count;
  char **mask_fields; /* request field paths masked in traces ("subject.id") */
  size_t mask_field_count;
  char *mask_key_file; /* HMAC key for masking; NULL = DATA_DIR/mask.key (created on first use) */
  /* HTTPS: PEM certificate (chain) and private key files; both NULL = plain HTTP. */
  char *tls_cert;
  char *tls_key;
  vd_config_limits limits;
  /* The decision log's settings (durability, queue, overload, retention); decision_log.path
   * points at decision_log_path when the file names one, else it is NULL and the log lives at
   * DATA_DIR/decisions.db. */
  vd_decision_log_config decision_log;
  char *decision_log_path;
  /* The `llm:` mapping as written (handed to vd_llm_config_from_json, which checks every key),
   * with its paths (data_dir, prompts_dir, catalogue, gazetteer) resolved against the config
   * file's folder; NULL when the file has no `llm:`. */
  json_t *llm;
  /* The folder holding the config file (the LLM layer's default paths are relative to it). */
  char *base_dir;
} vd_config;

/* Loads and checks a config file. NULL with err (file:line:col) on any mistake. */
vd_config *vd_config_load(const char *path, vd_error *err);
/* What the command line gives in place of the file's settings (each NULL: the file's). */
typedef struct vd_config_overrides {
  const char *listen;   /* --listen HOST:PORT */
  const char *data_dir; /* --data-dir DIR: the file then need not name data_dir */
} vd_config_overrides;
/* vd_config_load with the overrides applied (overrides may be NULL); an override's mistake is
 * named by its option ("--listen: ..."). */
vd_config *vd_config_load_overridden(const char *path, const vd_config_overrides *overrides,
                                     vd_error *err);
/* Loads a config from text (name is used in positions); relative paths resolve against base_dir. */
vd_config *vd_config_load_string(const char *text, const char *name, const char *base_dir,
                                 vd_error *err);
void vd_config_free(vd_config *config);

/* Parses "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces). host gets a heap string. */
bool vd_config_parse_listen(const char *text, char **host, int *port, vd_error *err);
/* Applies --listen and --data-dir overrides (either may be NULL). */
bool vd_config_override(vd_config *config, const char *listen, const char *data_dir, vd_error *err);

#endif
