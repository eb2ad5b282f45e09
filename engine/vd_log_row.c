#include "vd_log_row.h"

#include <string.h>

#include "vd_le.h"

enum { ROW_HEAD = 14 };
static const uint32_t no_field = 0xffffffffu;

size_t vd_log_row_size(const vd_log_row *row, vd_error *err) {
  size_t total = ROW_HEAD;
  for (int i = 0; i < VD_ROW_FIELDS; i++) total += 4 + (row->field[i] ? row->field_len[i] : 0);
  if (row->trace_len >= no_field) {
    vd_error_set(err, "a trace of %zu bytes is too long to store", row->trace_len);
    return 0;
  }
  return total;
}

void vd_log_row_write(const vd_log_row *row, unsigned char *out) {
  out[0] = VD_LOG_ROW_FORMAT;
  out[1] = row->blob ? 1 : 0;
  vd_le_put64(out + 2, (uint64_t)row->timestamp_us);
  vd_le_put32(out + 10, (uint32_t)row->trace_len);
  unsigned char *p = out + ROW_HEAD;
  for (int i = 0; i < VD_ROW_FIELDS; i++) {
    vd_le_put32(p, row->field[i] ? row->field_len[i] : no_field);
    p += 4;
    if (!row->field[i]) continue;
    memcpy(p, row->field[i], row->field_len[i]);
    p += row->field_len[i];
  }
}

bool vd_log_row_read(const unsigned char *payload, size_t len, vd_log_row *row, vd_error *err) {
  const unsigned char *p = payload, *end = payload + len;
  if (len < ROW_HEAD || p[0] != VD_LOG_ROW_FORMAT)
    return vd_error_set(err, "not a decision row of format %d", VD_LOG_ROW_FORMAT);
  row->blob = p[1] & 1;
  row->timestamp_us = (int64_t)vd_le_get64(p + 2);
  row->trace_len = vd_le_get32(p + 10);
  p += ROW_HEAD;
  for (int i = 0; i < VD_ROW_FIELDS; i++) {
    if (end - p < 4) return vd_error_set(err, "a decision row ends inside field %d", i + 1);
    uint32_t field_len = vd_le_get32(p);
    p += 4;
    row->field[i] = NULL;
    row->field_len[i] = 0;
    if (field_len == no_field) continue;
    if ((size_t)(end - p) < field_len)
      return vd_error_set(err, "a decision row's field %d is cut", i + 1);
    row->field[i] = (const char *)p;
    row->field_len[i] = field_len;
    p += field_len;
  }
  if (p != end) return vd_error_set(err, "a decision row has %td bytes too many", end - p);
  if (!row->field[VD_ROW_ID] || !row->field[VD_ROW_KIND] || !row->field[VD_ROW_TRACE])
    return vd_error_set(err, "a decision row lacks its id, kind or trace");
  return true;
}
