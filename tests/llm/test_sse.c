/* The SSE parser against the event-stream spec: fields, comments, multi-line data, CR/LF/CRLF,
 * BOM, retry, id, and the same stream split at every possible byte. */
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_sse.h"
#include "vd_test.h"

typedef struct collected {
  vd_buf log; /* "type|data|id\n" per event */
  int count;
  int stop_after; /* 0 = never */
} collected;

static bool collect(void *ctx, const vd_sse_event *e) {
  collected *c = ctx;
  vd_buf_printf(&c->log, "%s|%s|%s\n", e->type, e->data, e->id);
  c->count++;
  return !(c->stop_after && c->count >= c->stop_after);
}

static char *parse_all(const char *input, size_t len, size_t split) {
  collected c = {0};
  vd_sse_parser *p = vd_sse_parser_new(collect, &c, 0);
  ck_assert_ptr_nonnull(p);
  vd_error err;
  if (split == 0 || split >= len) {
    ck_assert(vd_sse_feed(p, input, len, &err));
  } else {
    ck_assert(vd_sse_feed(p, input, split, &err));
    ck_assert(vd_sse_feed(p, input + split, len - split, &err));
  }
  vd_sse_parser_free(p);
  vd_buf_puts(&c.log, "");
  return vd_buf_take(&c.log);
}

START_TEST(test_fields_and_dispatch) {
  const char *in =
      ": a comment\n"
      "event: message_start\n"
      "data: {\"a\":1}\n\n"
      "data: first\n"
      "data: second\n"
      "id: 42\n\n"
      "data:no-space\n\n"
      "data\n\n"          /* a field without a colon: empty data */
      "event: lonely\n\n" /* no data: nothing dispatched, the type resets */
      "data: after\n\n"
      "unknown: x\n"
      "data:  two spaces\n\n";
  char *log = parse_all(in, strlen(in), 0);
  ck_assert_str_eq(log,
                   "message_start|{\"a\":1}|\n"
                   "message|first\nsecond|42\n"
                   "message|no-space|42\n"
                   "message||42\n"
                   "message|after|42\n"
                   "message| two spaces|42\n");
  free(log);
}
END_TEST

START_TEST(test_line_endings_and_bom) {
  const char *in =
      "\xEF\xBB\xBF"
      "event: a\r\ndata: x\r\n\r\nevent: b\rdata: y\r\rdata: z\n\n";
  char *log = parse_all(in, strlen(in), 0);
  ck_assert_str_eq(log, "a|x|\nb|y|\nmessage|z|\n");
  free(log);
}
END_TEST

START_TEST(test_every_split_point) {
  const char *in =
      "\xEF\xBB\xBF: c\r\nevent: e1\r\ndata: one\r\ndata: two\r\n\r\n"
      "id: 7\rdata: {\"k\": \"v\"}\r\r"
      "data: last\n\n";
  size_t len = strlen(in);
  char *whole = parse_all(in, len, 0);
  ck_assert_str_eq(whole, "e1|one\ntwo|\nmessage|{\"k\": \"v\"}|7\nmessage|last|7\n");
  for (size_t split = 1; split < len; split++) {
    char *parts = parse_all(in, len, split);
    ck_assert_msg(strcmp(parts, whole) == 0, "split at %zu gave %s", split, parts);
    free(parts);
  }
  /* Byte by byte. */
  collected c = {0};
  vd_sse_parser *p = vd_sse_parser_new(collect, &c, 0);
  for (size_t i = 0; i < len; i++) ck_assert(vd_sse_feed(p, in + i, 1, NULL));
  vd_sse_parser_free(p);
  ck_assert_str_eq(c.log.data, whole);
  vd_buf_free(&c.log);
  free(whole);
}
END_TEST

START_TEST(test_incomplete_event_discarded_and_retry) {
  collected c = {0};
  vd_sse_parser *p = vd_sse_parser_new(collect, &c, 0);
  const char *in = "retry: 1500\ndata: done\n\nretry: 12x\ndata: half";
  ck_assert(vd_sse_feed(p, in, strlen(in), NULL));
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(vd_sse_retry_ms(p), 1500); /* "12x" is not all digits: ignored */
  ck_assert_uint_eq(vd_sse_event_count(p), 1);
  vd_sse_parser_free(p); /* the open "half" event is never dispatched */
  ck_assert_int_eq(c.count, 1);
  vd_buf_free(&c.log);
}
END_TEST

START_TEST(test_limits_and_stop) {
  collected c = {0};
  vd_sse_parser *p = vd_sse_parser_new(collect, &c, 16);
  vd_error err;
  ck_assert(!vd_sse_feed(p, "data: 0123456789abcdefXYZ\n", 26, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "exceeds 16 bytes"));
  vd_sse_parser_free(p);
  vd_buf_free(&c.log);

  collected d = {.stop_after = 1};
  p = vd_sse_parser_new(collect, &d, 0);
  ck_assert(!vd_sse_feed(p, "data: a\n\ndata: b\n\n", 18, &err));
  ck_assert_int_eq(d.count, 1);
  ck_assert_ptr_nonnull(strstr(err.message, "stopped"));
  vd_sse_parser_free(p);
  vd_buf_free(&d.log);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sse");
  TCase *tc = tcase_create("parser");
  tcase_add_test(tc, test_fields_and_dispatch);
  tcase_add_test(tc, test_line_endings_and_bom);
  tcase_add_test(tc, test_every_split_point);
  tcase_add_test(tc, test_incomplete_event_discarded_and_retry);
  tcase_add_test(tc, test_limits_and_stop);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
