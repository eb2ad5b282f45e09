#include "vd_sse.h"

#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"

struct vd_sse_parser {
  vd_sse_callback callback;
  void *ctx;
  size_t max_line;
  vd_buf line;     /* the line being read */
  vd_buf data;     /* data buffer of the event being built */
  vd_buf type;     /* event type buffer */
  vd_buf last_id;  /* last event id */
  bool has_data;   /* at least one data field since the last dispatch */
  bool skip_lf;    /* the previous chunk ended in CR: a leading LF belongs to it */
  bool started;    /* past the optional BOM */
  size_t bom_seen; /* bytes of a BOM prefix matched so far */
  int64_t retry_ms;
  uint64_t events;
};

vd_sse_parser *vd_sse_parser_new(vd_sse_callback callback, void *ctx, size_t max_line) {
  vd_sse_parser *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->callback = callback;
  p->ctx = ctx;
  p->max_line = max_line ? max_line : (size_t)1 << 20;
  p->retry_ms = -1;
  vd_buf_puts(&p->last_id, "");
  return p;
}

void vd_sse_parser_free(vd_sse_parser *p) {
  if (!p) return;
  vd_buf_free(&p->line);
  vd_buf_free(&p->data);
  vd_buf_free(&p->type);
  vd_buf_free(&p->last_id);
  free(p);
}

int64_t vd_sse_retry_ms(const vd_sse_parser *p) { return p->retry_ms; }
uint64_t vd_sse_event_count(const vd_sse_parser *p) { return p->events; }

static bool dispatch(vd_sse_parser *p, vd_error *err) {
  if (!p->has_data) { /* spec: no data → reset the buffers, fire nothing */
    vd_buf_reset(&p->type);
    return true;
  }
  /* Remove the data buffer's trailing LF (each data line appended one). */
  if (p->data.len && p->data.data[p->data.len - 1] == '\n') p->data.data[--p->data.len] = '\0';
  vd_sse_event ev = {
      .type = p->type.len ? p->type.data : "message",
      .data = p->data.data ? p->data.data : "",
      .data_len = p->data.len,
      .id = p->last_id.data ? p->last_id.data : "",
  };
  p->events++;
  bool go_on = p->callback ? p->callback(p->ctx, &ev) : true;
  vd_buf_reset(&p->data);
  vd_buf_reset(&p->type);
  p->has_data = false;
  if (!go_on) return vd_error_set(err, "event stream: stopped by the consumer");
  return true;
}

static bool all_digits(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

static bool process_line(vd_sse_parser *p, vd_error *err) {
  const char *line = p->line.data ? p->line.data : "";
  size_t len = p->line.len;
  if (len == 0) return dispatch(p, err);
  if (line[0] == ':') return true; /* comment */
  const char *colon = memchr(line, ':', len);
  size_t name_len = colon ? (size_t)(colon - line) : len;
  const char *value = colon ? colon + 1 : line + len;
  size_t value_len = colon ? len - name_len - 1 : 0;
  if (value_len && value[0] == ' ') value++, value_len--;
  if (name_len == 5 && memcmp(line, "event", 5) == 0) {
    vd_buf_reset(&p->type);
    vd_buf_append(&p->type, value, value_len);
  } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
    if (p->data.len + value_len + 1 > p->max_line)
      return vd_error_set(err, "event stream: an event's data exceeds %zu bytes", p->max_line);
    vd_buf_append(&p->data, value, value_len);
    vd_buf_append(&p->data, "\n", 1);
    p->has_data = true;
  } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
    if (!memchr(value, '\0', value_len)) {
      vd_buf_reset(&p->last_id);
      vd_buf_append(&p->last_id, value, value_len);
    }
  } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
    if (all_digits(value, value_len) && value_len < 18) {
      int64_t ms = 0;
      for (size_t i = 0; i < value_len; i++) ms = ms * 10 + (value[i] - '0');
      p->retry_ms = ms;
    }
  } /* any other field is ignored, as the spec says */
  if (p->data.oom || p->type.oom || p->last_id.oom)
    return vd_error_set(err, "event stream: out of memory");
  return true;
}

bool vd_sse_feed(vd_sse_parser *p, const char *bytes, size_t size, vd_error *err) {
  static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
  size_t i = 0;
  while (!p->started && i < size) {
    if ((unsigned char)bytes[i] == bom[p->bom_seen]) {
      p->bom_seen++, i++;
      if (p->bom_seen == 3) p->started = true;
    } else {
      /* Not a BOM after all: the bytes matched so far are line content. */
      vd_buf_append(&p->line, bom, p->bom_seen);
      p->started = true;
    }
  }
  while (i < size) {
    if (p->skip_lf) {
      p->skip_lf = false;
      if (bytes[i] == '\n') {
        i++;
        continue;
      }
    }
    /* Copy up to the next line end in one go. */
    size_t j = i;
    while (j < size && bytes[j] != '\n' && bytes[j] != '\r') j++;
    if (p->line.len + (j - i) > p->max_line)
      return vd_error_set(err, "event stream: a line exceeds %zu bytes", p->max_line);
    vd_buf_append(&p->line, bytes + i, j - i);
    if (p->line.oom) return vd_error_set(err, "event stream: out of memory");
    if (j == size) break;
    if (bytes[j] == '\r') p->skip_lf = true;
    i = j + 1;
    bool ok = process_line(p, err);
    vd_buf_reset(&p->line);
    if (!ok) return false;
  }
  return true;
}
