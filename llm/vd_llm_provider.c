#define _XOPEN_SOURCE 700 /* strptime */
#include "vd_llm_provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *vd_llm_wire_name(vd_llm_wire wire) {
  return wire == VD_LLM_WIRE_OPENAI ? "openai" : "anthropic";
}

bool vd_llm_wire_parse(const char *name, vd_llm_wire *wire) {
  if (strcmp(name, "anthropic") == 0) {
    *wire = VD_LLM_WIRE_ANTHROPIC;
    return true;
  }
  if (strcmp(name, "openai") == 0) {
    *wire = VD_LLM_WIRE_OPENAI;
    return true;
  }
  return false;
}

bool vd_llm_endpoint_url(vd_llm_wire wire, const char *base_url, char *buf, size_t size) {
  size_t n = strlen(base_url);
  while (n && base_url[n - 1] == '/') n--;
  const char *suffix = wire == VD_LLM_WIRE_OPENAI ? "/chat/completions" : "/v1/messages";
  int w = snprintf(buf, size, "%.*s%s", (int)n, base_url, suffix);
  return w > 0 && (size_t)w < size;
}

json_t *vd_llm_request_body(vd_llm_wire wire, const char *model, const char *system,
                            const json_t *messages, int max_tokens, double temperature) {
  json_t *body = json_object();
  json_object_set_new(body, "model", json_string(model));
  json_object_set_new(body, "max_tokens", json_integer(max_tokens));
  json_object_set_new(body, "stream", json_true());
  if (temperature >= 0) json_object_set_new(body, "temperature", json_real(temperature));
  if (wire == VD_LLM_WIRE_ANTHROPIC) {
    if (system) json_object_set_new(body, "system", json_string(system));
    json_object_set_new(body, "messages", json_deep_copy(messages));
  } else {
    json_t *all = json_array();
    if (system)
      json_array_append_new(all, json_pack("{s:s,s:s}", "role", "system", "content", system));
    json_array_extend(all, (json_t *)messages);
    json_object_set_new(body, "messages", all);
    json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
  }
  return body;
}

static bool stream_fail(vd_llm_stream *s, bool retryable, const char *type, const char *message) {
  s->failed = true;
  s->error_retryable = retryable;
  snprintf(s->error_type, sizeof s->error_type, "%s", type);
  snprintf(s->error_message, sizeof s->error_message, "%s", message);
  return false;
}

static void append_text(vd_llm_stream *s, const char *text, size_t len) {
  if (!text || !len) return;
  vd_buf_append(&s->text, text, len);
  if (s->on_token) s->on_token(s->token_ctx, text, len);
}

/* Error types after which a retry cannot help. */
static bool permanent_error_type(const char *type) {
  return strcmp(type, "invalid_request_error") == 0 || strcmp(type, "authentication_error") == 0 ||
         strcmp(type, "permission_error") == 0 || strcmp(type, "billing_error") == 0 ||
         strcmp(type, "not_found_error") == 0 || strcmp(type, "request_too_large") == 0 ||
         strcmp(type, "insufficient_quota") == 0;
}

static bool error_object(vd_llm_stream *s, const json_t *error) {
  const char *type = json_string_value(json_object_get(error, "type"));
  if (!type) type = json_string_value(json_object_get(error, "code"));
  const char *message = json_string_value(json_object_get(error, "message"));
  if (!type) type = "api_error";
  return stream_fail(s, !permanent_error_type(type), type, message ? message : "error event");
}

static void usage_from(vd_llm_stream *s, const json_t *usage, const char *in_key,
                       const char *out_key) {
  if (!json_is_object(usage)) return;
  const json_t *in = json_object_get(usage, in_key);
  const json_t *out = json_object_get(usage, out_key);
  if (json_is_integer(in)) s->input_tokens = json_integer_value(in), s->usage_seen = true;
  if (json_is_integer(out)) s->output_tokens = json_integer_value(out), s->usage_seen = true;
}

static bool anthropic_event(vd_llm_stream *s, const char *type, const json_t *data) {
  if (strcmp(type, "message_start") == 0) {
    usage_from(s, json_object_get(json_object_get(data, "message"), "usage"), "input_tokens",
               "output_tokens");
  } else if (strcmp(type, "content_block_start") == 0) {
    /* A text block may carry initial text. */
    const json_t *block = json_object_get(data, "content_block");
    const char *text = json_string_value(json_object_get(block, "text"));
    if (text) append_text(s, text, strlen(text));
  } else if (strcmp(type, "content_block_delta") == 0) {
    const json_t *delta = json_object_get(data, "delta");
    const char *dtype = json_string_value(json_object_get(delta, "type"));
    const char *key = NULL;
    if (dtype && strcmp(dtype, "text_delta") == 0) key = "text";
    if (dtype && strcmp(dtype, "input_json_delta") == 0) key = "partial_json";
    if (key) {
      const json_t *t = json_object_get(delta, key);
      if (!json_is_string(t))
        return stream_fail(s, true, "protocol_error", "content_block_delta without its text");
      append_text(s, json_string_value(t), json_string_length(t));
    }
  } else if (strcmp(type, "message_delta") == 0) {
    /* usage here is cumulative: it replaces, never adds. */
    usage_from(s, json_object_get(data, "usage"), "input_tokens", "output_tokens");
    const char *stop =
        json_string_value(json_object_get(json_object_get(data, "delta"), "stop_reason"));
    if (stop) snprintf(s->stop_reason, sizeof s->stop_reason, "%s", stop);
  } else if (strcmp(type, "message_stop") == 0) {
    s->complete = true;
  } else if (strcmp(type, "error") == 0) {
    return error_object(s, json_object_get(data, "error"));
  } /* ping, content_block_stop and unknown types: nothing to do */
  return true;
}

static bool openai_chunk(vd_llm_stream *s, const json_t *data) {
  const json_t *error = json_object_get(data, "error");
  if (error) return error_object(s, error);
  usage_from(s, json_object_get(data, "usage"), "prompt_tokens", "completion_tokens");
  const json_t *choices = json_object_get(data, "choices");
  size_t i;
  json_t *choice;
  json_array_foreach(choices, i, choice) {
    if (json_integer_value(json_object_get(choice, "index")) != 0) continue;
    const json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
    if (json_is_string(content))
      append_text(s, json_string_value(content), json_string_length(content));
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) snprintf(s->stop_reason, sizeof s->stop_reason, "%s", finish);
  }
  return true;
}

bool vd_llm_stream_event(vd_llm_stream *s, const vd_sse_event *event) {
  if (s->failed) return false;
  s->events++;
  if (s->complete) return true; /* anything after the end is ignored */
  if (s->wire == VD_LLM_WIRE_OPENAI && strcmp(event->data, "[DONE]") == 0) {
    s->complete = true;
    return true;
  }
  if (s->wire == VD_LLM_WIRE_ANTHROPIC && strcmp(event->type, "ping") == 0) return true;
  json_error_t jerr;
  json_t *data = json_loadb(event->data, event->data_len, 0, &jerr);
  if (!json_is_object(data)) {
    json_decref(data);
    char message[200];
    snprintf(message, sizeof message, "undecodable %s event data: %s", event->type, jerr.text);
    return stream_fail(s, true, "protocol_error", message);
  }
  bool ok;
  if (s->wire == VD_LLM_WIRE_ANTHROPIC) {
    /* The event name is authoritative; the data's "type" repeats it. */
    const char *type = strcmp(event->type, "message") == 0
                           ? json_string_value(json_object_get(data, "type"))
                           : event->type;
    ok = type ? anthropic_event(s, type, data) : true;
  } else {
    ok = openai_chunk(s, data);
  }
  json_decref(data);
  if (s->text.oom) return stream_fail(s, false, "out_of_memory", "answer text: out of memory");
  return ok;
}

void vd_llm_stream_free(vd_llm_stream *s) { vd_buf_free(&s->text); }

int64_t vd_llm_parse_retry_after(const char *value, int64_t now_wall_s) {
  if (!value) return -1;
  while (isspace((unsigned char)*value)) value++;
  if (isdigit((unsigned char)*value)) {
    char *end;
    double seconds = strtod(value, &end);
    while (isspace((unsigned char)*end)) end++;
    if (*end || seconds < 0 || seconds > 86400.0) return -1;
    return (int64_t)(seconds * 1000.0);
  }
  struct tm tm = {0};
  const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end) return -1;
  int64_t at = (int64_t)timegm(&tm);
  int64_t ms = (at - now_wall_s) * 1000;
  return ms < 0 ? 0 : ms;
}

vd_llm_failure vd_llm_classify_http(int status, const char *body, const char *retry_after,
                                    int64_t now_wall_s) {
  vd_llm_failure f = {.http_status = status, .retry_after_ms = -1};
  f.retry_after_ms = vd_llm_parse_retry_after(retry_after, now_wall_s);
  snprintf(f.kind, sizeof f.kind, "http_%d", status);
  snprintf(f.message, sizeof f.message, "HTTP %d", status);
  json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
  const json_t *error = json_object_get(doc, "error");
  const char *type = json_string_value(json_object_get(error, "type"));
  const char *code = json_string_value(json_object_get(error, "code"));
  const char *detail =
      json_string_value(json_object_get(json_object_get(error, "details"), "error_code"));
  const char *message = json_string_value(json_object_get(error, "message"));
  if (type) snprintf(f.kind, sizeof f.kind, "%s", type);
  if (message) snprintf(f.message, sizeof f.message, "HTTP %d: %s", status, message);
  f.spending_limit = status == 402 || (type && strcmp(type, "billing_error") == 0) ||
                     (detail && strcmp(detail, "enforced_spend_limit_reached") == 0) ||
                     (code && (strcmp(code, "insufficient_quota") == 0 ||
                               strcmp(code, "billing_hard_limit_reached") == 0));
  if (f.spending_limit) snprintf(f.kind, sizeof f.kind, "spending_limit");
  f.retryable = !f.spending_limit && (status == 408 || status == 409 || status == 429 ||
                                      status == 529 || (status >= 500 && status <= 504));
  json_decref(doc);
  return f;
}
