#include "vd_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "vd_suggest.h"
#include "vd_yaml.h"

const char *vd_role_name(vd_role role) {
  switch (role) {
    case VD_ROLE_SCORE:
      return "score";
    case VD_ROLE_COMPLIANCE:
      return "compliance";
    case VD_ROLE_ADMIN:
      return "admin";
  }
  return "?";
}

static void free_strings(char **items, size_t count) {
  for (size_t i = 0; i < count; i++) free(items[i]);
  free(items);
}

void vd_config_free(vd_config *c) {
  if (!c) return;
  free(c->path);
  free(c->listen_host);
  free(c->data_dir);
  free_strings(c->deployments, c->deployment_count);
  for (size_t i = 0; i < c->key_count; i++) free(c->keys[i].name);
  free(c->keys);
  free_strings(c->mask_fields, c->mask_field_count);
  free(c->mask_key_file);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->decision_log_path);
  json_decref(c->llm);
  free(c->base_dir);
  free(c);
}

/* Everything one load needs to report positions and resolve relative paths. */
typedef struct loader {
  const vd_yaml_doc *doc;
  const char *base_dir;
  const vd_config_overrides *overrides; /* never NULL */
  vd_error *err;
} loader;

static char *resolve_path(const loader *ld, const char *path) {
  if (path[0] == '/' || !ld->base_dir || !ld->base_dir[0]) return strdup(path);
  size_t n = strlen(ld->base_dir) + strlen(path) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s/%s", ld->base_dir, path);
  return out;
}

/* Refuses keys not in `allowed` (NULL-terminated), naming the key's position. */
static bool only_keys(const loader *ld, const json_t *obj, const char *what,
                      const char *const *allowed) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)obj, key, value) {
    bool ok = false;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, key) == 0) ok = true;
    if (!ok) {
      char list[256] = "";
      for (const char *const *a = allowed; *a; a++) {
        if (list[0]) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, *a, sizeof list - strlen(list) - 1);
      }
      int line = 0, col = 0;
      vd_yaml_where_key(ld->doc, obj, key, &line, &col);
      size_t count = 0;
      while (allowed[count]) count++;
      const char *near = vd_suggest(key, allowed, count);
      if (near)
        return vd_error_at(ld->err, vd_yaml_name(ld->doc), line, col,
                           "unknown key '%s' in %s (did you mean '%s'?; expected one of: %s)", key,
                           what, near, list);
      return vd_error_at(ld->err, vd_yaml_name(ld->doc), line, col,
                         "unknown key '%s' in %s (expected one of: %s)", key, what, list);
    }
  }
  return true;
}

static bool want_object(const loader *ld, const json_t *parent, const char *key, json_t *value,
                        const char *what) {
  if (json_is_object(value)) return true;
  return vd_yaml_error(ld->doc, parent, key, 0, ld->err, "%s must be a mapping", what);
}

static bool get_string(const loader *ld, const json_t *obj, const char *key, const char **out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return true;
  if (!json_is_string(v) || json_string_length(v) == 0)
    return vd_yaml_error(ld->doc, obj, key, 0, ld->err, "'%s' must be a non-empty string", key);
  *out = json_string_value(v);
  return true;
}

static bool get_uint(const loader *ld, const json_t *obj, const char *key, unsigned long long min,
                     unsigned long long max, unsigned long long *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return true;
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (unsigned long long)json_integer_value(v) < min ||
      (unsigned long long)json_integer_value(v) > max)
    return vd_yaml_error(ld->doc, obj, key, 0, ld->err, "'%s' must be an integer in [%llu, %llu]",
                         key, min, max);
  *out = (unsigned long long)json_integer_value(v);
  return true;
}

static bool get_unsigned(const loader *ld, const json_t *obj, const char *key, unsigned min,
                         unsigned max, unsigned *out) {
  unsigned long long v = *out;
  if (!get_uint(ld, obj, key, min, max, &v)) return false;
  *out = (unsigned)v;
  return true;
}

static bool get_bool(const loader *ld, const json_t *obj, const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return true;
  if (!json_is_boolean(v))
    return vd_yaml_error(ld->doc, obj, key, 0, ld->err, "'%s' must be true or false", key);
  *out = json_is_true(v);
  return true;
}

/* A list of non-empty strings. */
static bool get_strings(const loader *ld, const json_t *obj, const char *key, char ***out,
                        size_t *count, bool paths) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return true;
  if (!json_is_array(v))
    return vd_yaml_error(ld->doc, obj, key, 0, ld->err, "'%s' must be a list", key);
  size_t n = json_array_size(v);
  char **items = calloc(n ? n : 1, sizeof *items);
  if (!items) return vd_error_set(ld->err, "out of memory");
  for (size_t i = 0; i < n; i++) {
    json_t *item = json_array_get(v, i);
    if (!json_is_string(item) || json_string_length(item) == 0) {
      free_strings(items, i);
      return vd_yaml_error(ld->doc, v, NULL, i, ld->err, "every entry of '%s' must be a string",
                           key);
    }
    items[i] = paths ? resolve_path(ld, json_string_value(item)) : strdup(json_string_value(item));
  }
  *out = items;
  *count = n;
  return true;
}

bool vd_config_parse_listen(const char *text, char **host, int *port, vd_error *err) {
  const char *colon = strrchr(text, ':');
  if (!colon) return vd_error_set(err, "listen address '%s' must be HOST:PORT", text);
  const char *h = text;
  size_t hlen = (size_t)(colon - text);
  if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  } else if (memchr(h, ':', hlen)) {
    return vd_error_set(err, "listen address '%s': write an IPv6 host in brackets, [::1]:8080",
                        text);
  }
  const char *p = colon + 1;
  char *end = NULL;
  errno = 0;
  long value = strtol(p, &end, 10);
  if (!*p || *end || errno || value < 0 || value > 65535)
    return vd_error_set(err, "listen address '%s': port must be a number in [0, 65535]", text);
  *host = hlen ? strndup(h, hlen) : strdup("0.0.0.0");
  *port = (int)value;
  return *host != NULL || vd_error_set(err, "out of memory");
}

static bool parse_roles(const loader *ld, const json_t *key_obj, unsigned *roles) {
  json_t *v = json_object_get(key_obj, "roles");
  if (!json_is_array(v) || json_array_size(v) == 0)
    return vd_yaml_error(ld->doc, key_obj, v ? "roles" : NULL, 0, ld->err,
                         "a key needs 'roles': a list of score, compliance, admin");
  for (size_t i = 0; i < json_array_size(v); i++) {
    const char *name = json_string_value(json_array_get(v, i));
    unsigned bit = 0;
    if (name && strcmp(name, "score") == 0) bit = VD_ROLE_SCORE;
    if (name && strcmp(name, "compliance") == 0) bit = VD_ROLE_COMPLIANCE;
    if (name && strcmp(name, "admin") == 0) bit = VD_ROLE_ADMIN;
    if (!bit)
      return vd_yaml_error(ld->doc, v, NULL, i, ld->err,
                           "unknown role (expected score, compliance or admin)");
    *roles |= bit;
  }
  return true;
}

static bool parse_keys(const loader *ld, const json_t *root, vd_config *c) {
  json_t *v = json_object_get(root, "keys");
  if (!v || json_is_null(v)) return true;
  if (!json_is_array(v))
    return vd_yaml_error(ld->doc, root, "keys", 0, ld->err,
                         "'keys' must be a list of {name, sha256, roles}");
  size_t n = json_array_size(v);
  c->keys = calloc(n ? n : 1, sizeof *c->keys);
  if (!c->keys) return vd_error_set(ld->err, "out of memory");
  static const char *const allowed[] = {"name", "sha256", "roles", NULL};
  for (size_t i = 0; i < n; i++) {
    json_t *k = json_array_get(v, i);
    if (!json_is_object(k))
      return vd_yaml_error(ld->doc, v, NULL, i, ld->err, "a key must be {name, sha256, roles}");
    if (!only_keys(ld, k, "a key", allowed)) return false;
    vd_config_key *key = &c->keys[c->key_count];
    const char *name = NULL, *hash = NULL;
    if (!get_string(ld, k, "name", &name) || !get_string(ld, k, "sha256", &hash)) return false;
    if (!name) return vd_yaml_error(ld->doc, v, NULL, i, ld->err, "a key needs a 'name'");
    if (!hash || strlen(hash) != 64)
      return vd_yaml_error(ld->doc, hash ? k : v, hash ? "sha256" : NULL, i, ld->err,
                           "key '%s' needs 'sha256': the 64 hex digits of the key's SHA-256 "
                           "(printf %%s KEY | sha256sum)",
                           name);
    for (size_t j = 0; j < 64; j++) {
      if (!isxdigit((unsigned char)hash[j]))
        return vd_yaml_error(ld->doc, k, "sha256", 0, ld->err,
                             "key '%s': sha256 must be hex digits only", name);
      key->sha256[j] = (char)tolower((unsigned char)hash[j]);
    }
    key->sha256[64] = '\0';
    for (size_t j = 0; j < c->key_count; j++) {
      if (strcmp(c->keys[j].name, name) == 0)
        return vd_yaml_error(ld->doc, k, "name", 0, ld->err, "duplicate key name '%s'", name);
      if (strcmp(c->keys[j].sha256, key->sha256) == 0)
        return vd_yaml_error(ld->doc, k, "sha256", 0, ld->err,
                             "key '%s' has the same secret as key '%s'", name, c->keys[j].name);
    }
    if (!parse_roles(ld, k, &key->roles)) return false;
    key->name = strdup(name);
    c->key_count++;
  }
  return true;
}

static bool parse_limits(const loader *ld, const json_t *root, vd_config_limits *l) {
  json_t *v = json_object_get(root, "limits");
  if (!v || json_is_null(v)) return true;
  static const char *const allowed[] = {"threads",
                                        "max_connections",
                                        "max_connections_per_ip",
                                        "connection_timeout_s",
                                        "request_timeout_ms",
                                        "shutdown_timeout_ms",
                                        "max_body_bytes",
                                        "max_header_bytes",
                                        "max_results",
                                        "time_slice_us",
                                        NULL};
  if (!want_object(ld, root, "limits", v, "'limits'") || !only_keys(ld, v, "limits", allowed))
    return false;
  unsigned long long body = l->max_body_bytes, header = l->max_header_bytes;
  return get_unsigned(ld, v, "threads", 0, 1024, &l->threads) &&
         get_unsigned(ld, v, "max_connections", 1, 1000000, &l->max_connections) &&
         get_unsigned(ld, v, "max_connections_per_ip", 0, 1000000, &l->max_connections_per_ip) &&
         get_unsigned(ld, v, "connection_timeout_s", 0, 86400, &l->connection_timeout_s) &&
         get_unsigned(ld, v, "request_timeout_ms", 0, 3600000, &l->request_timeout_ms) &&
         get_unsigned(ld, v, "shutdown_timeout_ms", 0, 3600000, &l->shutdown_timeout_ms) &&
         get_unsigned(ld, v, "max_results", 0, 100000, &l->max_results) &&
         get_unsigned(ld, v, "time_slice_us", 0, 100000, &l->time_slice_us) &&
         get_uint(ld, v, "max_body_bytes", 64, 64ull * 1024 * 1024, &body) &&
         get_uint(ld, v, "max_header_bytes", 1024, 1024 * 1024, &header) &&
         ((l->max_body_bytes = body), (l->max_header_bytes = header), true);
}

static bool parse_log(const loader *ld, const json_t *root, vd_config *c) {
  json_t *v = json_object_get(root, "decision_log");
  if (!v || json_is_null(v)) return true;
  static const char *const allowed[] = {"path",
                                        "durability",
                                        "overload",
                                        "queue_capacity",
                                        "max_batch",
                                        "max_wait_ms",
                                        "busy_timeout_ms",
                                        "retention_days",
                                        "max_bytes",
                                        "min_free_bytes",
                                        "retention_interval_ms",
                                        "compress",
                                        NULL};
  if (!want_object(ld, root, "decision_log", v, "'decision_log'") ||
      !only_keys(ld, v, "decision_log", allowed))
    return false;
  vd_decision_log_config *log = &c->decision_log;
  const char *path = NULL, *durability = NULL, *overload = NULL;
  if (!get_string(ld, v, "path", &path) || !get_string(ld, v, "durability", &durability) ||
      !get_string(ld, v, "overload", &overload))
    return false;
  if (path) log->path = c->decision_log_path = resolve_path(ld, path);
  if (durability) {
    if (strcmp(durability, "normal") == 0)
      log->durability = VD_DURABILITY_NORMAL;
    else if (strcmp(durability, "fsync") == 0)
      log->durability = VD_DURABILITY_FSYNC;
    else
      return vd_yaml_error(ld->doc, v, "durability", 0, ld->err,
                           "durability must be 'normal' (survives a crash of the process) or "
                           "'fsync' (also survives power loss), got '%s'",
                           durability);
  }
  if (overload) {
    if (strcmp(overload, "reject") == 0)
      log->overload = VD_LOG_OVERLOAD_REJECT;
    else if (strcmp(overload, "wait") == 0)
      log->overload = VD_LOG_OVERLOAD_WAIT;
    else
      return vd_yaml_error(ld->doc, v, "overload", 0, ld->err,
                           "overload must be 'reject' (answer 503 at once when the queue is "
                           "full) or 'wait' (wait up to max_wait_ms, then 503), got '%s'",
                           overload);
  }
  unsigned long long queue = log->queue_capacity, batch = log->max_batch, bytes = log->max_bytes,
                     min_free = log->min_free_bytes;
  if (!get_uint(ld, v, "queue_capacity", 1, 10000000, &queue) ||
      !get_uint(ld, v, "max_batch", 1, 100000, &batch) ||
      !get_uint(ld, v, "max_bytes", 0, 1ull << 50, &bytes) ||
      !get_uint(ld, v, "min_free_bytes", 0, 1ull << 50, &min_free) ||
      !get_unsigned(ld, v, "max_wait_ms", 1, 600000, &log->max_wait_ms) ||
      !get_unsigned(ld, v, "busy_timeout_ms", 1, 600000, &log->busy_timeout_ms) ||
      !get_unsigned(ld, v, "retention_days", 0, 100000, &log->retention_days) ||
      !get_unsigned(ld, v, "retention_interval_ms", 1000, 604800000, &log->retention_interval_ms))
    return false;
  log->queue_capacity = (size_t)queue;
  log->max_batch = (size_t)batch;
  log->max_bytes = bytes;
  log->min_free_bytes = min_free;
  bool compress = !log->uncompressed;
  if (!get_bool(ld, v, "compress", &compress)) return false;
  log->uncompressed = !compress;
  return true;
}

/* The `llm:` section is the LLM layer's to check (vd_llm_config_from_json, at start); here it
 * must be a mapping and its paths are resolved like every other path in the file. */
static bool parse_llm(const loader *ld, const json_t *root, vd_config *c) {
  c->base_dir = strdup(ld->base_dir ? ld->base_dir : ".");
  const json_t *v = json_object_get(root, "llm");
  if (!v || json_is_null(v)) return true;
  if (!json_is_object(v))
    return vd_yaml_error(ld->doc, root, "llm", 0, ld->err,
                         "'llm' must be a mapping (see README \"LLM layer\")");
  c->llm = json_deep_copy(v);
  static const char *const paths[] = {"data_dir", "prompts_dir", "catalogue", "gazetteer"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    const char *path = json_string_value(json_object_get(c->llm, paths[i]));
    if (!path) continue;
    char *resolved = resolve_path(ld, path);
    if (resolved) json_object_set_new(c->llm, paths[i], json_string(resolved));
    free(resolved);
  }
  return true;
}

static bool parse_root(const loader *ld, const json_t *root, vd_config *c) {
  if (!json_is_object(root))
    return vd_yaml_error(ld->doc, NULL, NULL, 0, ld->err, "the config must be a mapping");
  static const char *const allowed[] = {
      "listen", "data_dir",     "deployments", "keys",     "mask_fields", "mask_key_file",
      "limits", "decision_log", "llm",         "tls_cert", "tls_key",     NULL};
  if (!only_keys(ld, root, "the config", allowed)) return false;
  if (!parse_llm(ld, root, c)) return false;
  const char *listen = NULL, *data_dir = NULL, *mask_key = NULL, *tls_cert = NULL, *tls_key = NULL;
  if (!get_string(ld, root, "listen", &listen) || !get_string(ld, root, "data_dir", &data_dir) ||
      !get_string(ld, root, "mask_key_file", &mask_key) ||
      !get_string(ld, root, "tls_cert", &tls_cert) || !get_string(ld, root, "tls_key", &tls_key))
    return false;
  if (!tls_cert != !tls_key)
    return vd_yaml_error(ld->doc, root, tls_cert ? "tls_cert" : "tls_key", 0, ld->err,
                         "HTTPS needs both 'tls_cert' (PEM certificate chain) and 'tls_key' (PEM "
                         "private key); only '%s' is given",
                         tls_cert ? "tls_cert" : "tls_key");
  if (tls_cert) {
    c->tls_cert = resolve_path(ld, tls_cert);
    c->tls_key = resolve_path(ld, tls_key);
  }
  if (listen) {
    free(c->listen_host);
    c->listen_host = NULL;
    vd_error why;
    if (!vd_config_parse_listen(listen, &c->listen_host, &c->listen_port, &why))
      return vd_yaml_error(ld->doc, root, "listen", 0, ld->err, "%s", why.message);
  }
  /* --data-dir on the command line stands in for the file's data_dir (applied after the load). */
  if (!data_dir && !ld->overrides->data_dir)
    return vd_yaml_error(ld->doc, NULL, NULL, 0, ld->err,
                         "the config needs 'data_dir' (or --data-dir DIR on the command line): "
                         "the folder for the decision log and model store");
  if (data_dir) c->data_dir = resolve_path(ld, data_dir);
  if (mask_key) c->mask_key_file = resolve_path(ld, mask_key);
  if (!get_strings(ld, root, "deployments", &c->deployments, &c->deployment_count, true) ||
      !get_strings(ld, root, "mask_fields", &c->mask_fields, &c->mask_field_count, false))
    return false;
  if (c->deployment_count == 0)
    return vd_yaml_error(ld->doc, root, json_object_get(root, "deployments") ? "deployments" : NULL,
                         0, ld->err,
                         "the config needs 'deployments': a list of deployment folders");
  return parse_keys(ld, root, c) && parse_limits(ld, root, &c->limits) && parse_log(ld, root, c);
}

static vd_config *load_doc(vd_yaml_doc *doc, const char *base_dir,
                           const vd_config_overrides *overrides, vd_error *err) {
  vd_config *c = calloc(1, sizeof *c);
  if (!c) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  c->path = strdup(vd_yaml_name(doc));
  c->listen_host = strdup("127.0.0.1");
  c->listen_port = 8080;
  c->limits = (vd_config_limits){.threads = 0,
                                 .max_connections = 1024,
                                 .connection_timeout_s = 30,
                                 .request_timeout_ms = 10000,
                                 .shutdown_timeout_ms = 10000,
                                 .max_body_bytes = 64 * 1024,
                                 .max_header_bytes = 16 * 1024,
                                 .max_results = 0,
                                 .time_slice_us = 100};
  c->decision_log = (vd_decision_log_config){.path = NULL,
                                             .durability = VD_DURABILITY_NORMAL,
                                             .queue_capacity = 4096,
                                             .max_batch = 512,
                                             .overload = VD_LOG_OVERLOAD_REJECT,
                                             .max_wait_ms = 100,
                                             .busy_timeout_ms = 5000,
                                             .retention_days = 0,
                                             .retention_interval_ms = 3600000,
                                             .max_bytes = 0};
  static const vd_config_overrides none = {0};
  loader ld = {doc, base_dir, overrides ? overrides : &none, err};
  if (!parse_root(&ld, vd_yaml_root(doc), c) ||
      !vd_config_override(c, ld.overrides->listen, ld.overrides->data_dir, err)) {
    vd_config_free(c);
    return NULL;
  }
  return c;
}

vd_config *vd_config_load_string(const char *text, const char *name, const char *base_dir,
                                 vd_error *err) {
  vd_yaml_doc *doc = vd_yaml_load_string(text, strlen(text), name, err);
  if (!doc) return NULL;
  vd_config *c = load_doc(doc, base_dir, NULL, err);
  vd_yaml_free(doc);
  return c;
}

vd_config *vd_config_load(const char *path, vd_error *err) {
  return vd_config_load_overridden(path, NULL, err);
}

vd_config *vd_config_load_overridden(const char *path, const vd_config_overrides *overrides,
                                     vd_error *err) {
  vd_yaml_doc *doc = vd_yaml_load_file(path, err);
  if (!doc) return NULL;
  char *base = strdup(path);
  char *slash = base ? strrchr(base, '/') : NULL;
  if (slash) *slash = '\0';
  vd_config *c = load_doc(doc, slash ? base : ".", overrides, err);
  free(base);
  vd_yaml_free(doc);
  return c;
}

bool vd_config_override(vd_config *c, const char *listen, const char *data_dir, vd_error *err) {
  if (listen) {
    char *host = NULL;
    int port = 0;
    if (!vd_config_parse_listen(listen, &host, &port, err)) {
      vd_error_prefix(err, "--listen");
      return false;
    }
    free(c->listen_host);
    c->listen_host = host;
    c->listen_port = port;
  }
  if (data_dir) {
    char *copy = strdup(data_dir);
    if (!copy) return vd_error_set(err, "out of memory");
    free(c->data_dir);
    c->data_dir = copy;
  }
  return true;
}
