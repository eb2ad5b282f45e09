#include "vd_trace.h"

#include <stdlib.h>
#include <string.h>

#include "vd_hash.h"
#include "vd_json_path.h"
#include "vd_time.h"

json_t *vd_trace_mask_value(const json_t *value, const vd_trace_mask *mask) {
  char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
  if (!text) return NULL;
  char hex[VD_SHA256_HEX_SIZE];
  vd_hmac_sha256_hex(mask->key, mask->key_size, text, strlen(text), hex);
  free(text);
  char out[VD_SHA256_HEX_SIZE + 16];
  snprintf(out, sizeof out, "hmac-sha256:%s", hex);
  return json_string(out);
}

/* Masks root[path] in place when present; path is dotted ("id" or "address.zip"). */
static void mask_in(json_t *root, const char *path, const vd_trace_mask *mask) {
  const char *dot = strrchr(path, '.');
  json_t *parent = root;
  if (dot) {
    char *prefix = strndup(path, (size_t)(dot - path));
    parent = prefix ? vd_json_get_path(root, prefix) : NULL;
    free(prefix);
  }
  const char *key = dot ? dot + 1 : path;
  json_t *value = json_is_object(parent) ? json_object_get(parent, key) : NULL;
  if (!value || json_is_null(value)) return;
  json_t *masked = vd_trace_mask_value(value, mask);
  if (masked) json_object_set_new(parent, key, masked);
}

json_t *vd_trace_mask_request(const json_t *request, const vd_trace_mask *mask) {
  json_t *copy = json_deep_copy(request);
  if (!copy || !mask || !json_is_object(copy)) return copy;
  for (size_t i = 0; i < mask->field_count; i++) {
    const char *field = mask->fields[i];
    if (strncmp(field, "candidate.", 10) == 0) {
      mask_in(json_object_get(copy, "candidate"), field + 10, mask);
      json_t *list = json_object_get(copy, "candidates");
      size_t index;
      json_t *item;
      json_array_foreach(list, index, item) mask_in(item, field + 10, mask);
    } else {
      mask_in(copy, field, mask);
    }
  }
  return copy;
}

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *vd_trace_begin(const vd_trace_header *h, const json_t *request, const vd_trace_mask *mask) {
  char timestamp[40];
  vd_format_rfc3339_us(h->timestamp_us, timestamp, sizeof timestamp);
  json_t *model = h->model_version
                      ? json_pack("{s:s, s:s}", "name", h->model_name ? h->model_name : "",
                                  "version", h->model_version)
                      : json_null();
  json_t *fallback = h->fallback_reason ? json_pack("{s:s, s:o}", "reason", h->fallback_reason,
                                                    "message", string_or_null(h->fallback_message))
                                        : json_null();
  return json_pack(
      "{s:i, s:s, s:s, s:s, s:o, s:o, s:{s:o, s:o}, s:{s:o, s:o}, s:o, s:o, s:[]}", "trace_version",
      VD_TRACE_VERSION, "id", h->id, "kind", h->kind, "timestamp", timestamp, "deployment",
      string_or_null(h->deployment), "request", vd_trace_mask_request(request, mask), "ruleset",
      "name", string_or_null(h->ruleset_name), "version", string_or_null(h->ruleset_version),
      "schema", "name", string_or_null(h->schema_name), "version",
      string_or_null(h->schema_version), "model", model, "fallback", fallback, "candidates");
}

void vd_trace_add_candidate(json_t *trace, json_t *candidate) {
  json_array_append_new(json_object_get(trace, "candidates"), candidate);
}

void vd_trace_finish(json_t *trace, json_t *response, double validate_us, double rules_us,
                     double model_us, double total_us) {
  json_object_set(trace, "response", response);
  json_object_set_new(trace, "timings_us",
                      json_pack("{s:f, s:f, s:f, s:f}", "validate", validate_us, "rules", rules_us,
                                "model", model_us, "total", total_us));
}
