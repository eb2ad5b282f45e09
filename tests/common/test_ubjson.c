/* UBJSON → jansson: every value type, optimised ($ type, # count) and plain containers, no-ops,
 * big-endian integers of each width with their signs, float32 exactness, and clear errors (with
 * the byte offset) for truncated, malformed and oversized input. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vd_ubjson.h"

static json_t *decode(const void *data, size_t len) {
  vd_error err = {0};
  json_t *v = vd_ubjson_loadb(data, len, &err);
  ck_assert_msg(v != NULL, "%s", err.message);
  return v;
}

/* Decodes bytes that must fail; returns the message. */
static const char *refuse(const void *data, size_t len) {
  static vd_error err;
  json_t *v = vd_ubjson_loadb(data, len, &err);
  ck_assert_ptr_null(v);
  ck_assert(err.message[0] != '\0');
  return err.message;
}

START_TEST(scalars_of_every_type) {
  const unsigned char z[] = {'Z'}, t[] = {'T'}, f[] = {'F'}, c[] = {'C', 'x'};
  json_t *v = decode(z, sizeof z);
  ck_assert(json_is_null(v));
  ck_assert(json_is_true(decode(t, sizeof t)));
  ck_assert(json_is_false(decode(f, sizeof f)));
  v = decode(c, sizeof c);
  ck_assert_str_eq(json_string_value(v), "x");
  json_decref(v);
  struct {
    unsigned char bytes[9];
    size_t len;
    json_int_t want;
  } ints[] = {
      {{'i', 0xff}, 2, -1},
      {{'U', 0xff}, 2, 255},
      {{'I', 0x80, 0x00}, 3, -32768},
      {{'I', 0x01, 0x02}, 3, 258},
      {{'l', 0xff, 0xff, 0xff, 0xfe}, 5, -2},
      {{'L', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, INT64_MAX},
      {{'L', 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, INT64_MIN},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    v = decode(ints[i].bytes, ints[i].len);
    ck_assert_msg(json_is_integer(v) && json_integer_value(v) == ints[i].want, "case %zu", i);
    json_decref(v);
  }
  /* float32 0.1f (0x3dcccccd) decodes to exactly (double)0.1f; float64 -2.5 */
  const unsigned char d[] = {'d', 0x3d, 0xcc, 0xcc, 0xcd};
  const unsigned char dd[] = {'D', 0xc0, 0x04, 0, 0, 0, 0, 0, 0};
  v = decode(d, sizeof d);
  ck_assert(json_is_real(v) && json_real_value(v) == (double)0.1f);
  json_decref(v);
  v = decode(dd, sizeof dd);
  ck_assert(json_real_value(v) == -2.5);
  json_decref(v);
  const unsigned char s[] = {'S', 'i', 5, 'h', 0xc3, 0xa9, 'l', 'o'}; /* "hélo" */
  v = decode(s, sizeof s);
  ck_assert_str_eq(json_string_value(v), "h\xc3\xa9lo");
  json_decref(v);
}
END_TEST

/* XGBoost's shape: an object with counted keys, a typed float32 array, nested objects. */
START_TEST(containers_plain_typed_and_counted) {
  const unsigned char doc[] = {
      '{', 'L', 0,   0,   0,   0,   0,   0,    0,    7,   'w', 'e',  'i', 'g', 'h', 't',
      's', '[', '$', 'd', '#', 'i', 2,   0x3f, 0x80, 0,   0,   0xc0, 0,   0,   0, /* [1.0f, -2.0f]
                                                                                   */
      'U', 1,   'n', 'S', 'i', 2,   'g', 'b',  'N',            /* "n": "gb", then a no-op */
      'i', 1,   'a', '[', 'T', 'N', 'Z', 'i',  7,    ']',      /* "a": [true, null, 7] */
      'i', 1,   'o', '{', '#', 'i', 1,   'i',  1,    'k', 'F', /* "o": {"k": false} (counted) */
      'i', 1,   'e', '[', '$', 'Z', '#', 'i',  3, /* "e": [null, null, null] (typed, no bytes) */
      '}'};
  json_t *v = decode(doc, sizeof doc);
  char *text = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
  ck_assert_str_eq(text,
                   "{\"a\":[true,null,7],\"e\":[null,null,null],\"n\":\"gb\",\"o\":{\"k\":false},"
                   "\"weights\":[1.0,-2.0]}");
  free(text);
  json_decref(v);
  const unsigned char empty[] = {'[', '#', 'i', 0};
  v = decode(empty, sizeof empty);
  ck_assert(json_is_array(v) && json_array_size(v) == 0);
  json_decref(v);
  const unsigned char typed_object[] = {'{', '$', 'U', '#', 'i', 2, 'i', 1, 'a', 1, 'i', 1, 'b', 2};
  v = decode(typed_object, sizeof typed_object);
  ck_assert_int_eq(json_integer_value(json_object_get(v, "b")), 2);
  json_decref(v);
}
END_TEST

START_TEST(malformed_input_is_refused_with_its_offset) {
  const unsigned char truncated[] = {'l', 0, 0};
  ck_assert_str_eq(refuse(truncated, sizeof truncated), "byte 1: truncated: 2 more bytes expected");
  const unsigned char unknown[] = {'[', 'q', ']'};
  ck_assert_str_eq(refuse(unknown, sizeof unknown), "byte 1: unknown type marker 0x71");
  const unsigned char negative[] = {'S', 'i', 0xff};
  ck_assert_str_eq(refuse(negative, sizeof negative), "byte 3: string length -1 is negative");
  /* A count no input of this size can hold: refused before allocating anything. */
  const unsigned char huge[] = {'[', '$', 'd', '#', 'L', 0x7f, 0, 0, 0, 0, 0, 0, 0, 0};
  ck_assert_ptr_nonnull(strstr(refuse(huge, sizeof huge), "more than the bytes left"));
  const unsigned char untyped_count[] = {'[', '$', 'd', 'i', 1};
  ck_assert_ptr_nonnull(strstr(refuse(untyped_count, sizeof untyped_count), "needs a count"));
  const unsigned char bad_utf8[] = {'S', 'i', 1, 0xff};
  ck_assert_ptr_nonnull(strstr(refuse(bad_utf8, sizeof bad_utf8), "not valid UTF-8"));
  const unsigned char trailing[] = {'T', 'T'};
  ck_assert_str_eq(refuse(trailing, sizeof trailing), "byte 1: 1 trailing bytes after the value");
  const unsigned char open[] = {'{', 'i', 1, 'a', 'T'};
  ck_assert_ptr_nonnull(strstr(refuse(open, sizeof open), "truncated"));
  const unsigned char nul_key[] = {'{', 'i', 1, 0, 'T', '}'};
  ck_assert_ptr_nonnull(strstr(refuse(nul_key, sizeof nul_key), "NUL byte"));
  const unsigned char high[] = {'H', 'i', 1, '1'};
  ck_assert_ptr_nonnull(strstr(refuse(high, sizeof high), "not supported"));
  ck_assert_ptr_nonnull(strstr(refuse("", 0), "truncated"));
  /* NaN and infinities (no JSON value; json_real refused them and the caller read "out of
   * memory") are refused at their offset. */
  const unsigned char nan64[] = {'[', 'D', 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, ']'};
  ck_assert_str_eq(refuse(nan64, sizeof nan64), "byte 2: float64 NaN is not a finite number");
  const unsigned char inf32[] = {'[', '$', 'd', '#', 'i', 2, 0x3f, 0x80, 0, 0, 0xff, 0x80, 0, 0};
  ck_assert_str_eq(refuse(inf32, sizeof inf32),
                   "byte 10: float32 -infinity is not a finite number");
  /* Nesting deeper than the limit fails cleanly instead of exhausting the stack. */
  unsigned char deep[VD_UBJSON_MAX_DEPTH + 10];
  memset(deep, '[', sizeof deep);
  ck_assert_ptr_nonnull(strstr(refuse(deep, sizeof deep), "nested deeper"));
}
END_TEST

/* Typed arrays of null or booleans take no bytes per element: their counts are bounded in total
 * by the input's size (a 362-byte input of 40 arrays of 1M nulls each reached 333 MB, nested
 * ones 653 MB), each refused at the count that overdraws, with its offset. */
START_TEST(zero_payload_counts_are_bounded_by_the_input_size) {
  unsigned char nested[362] = {'['};
  const unsigned char million_nulls[] = {'[', '$', 'Z', '#', 'l', 0x00, 0x10, 0x00, 0x00};
  for (size_t i = 0; i < 40; i++)
    memcpy(nested + 1 + i * sizeof million_nulls, million_nulls, sizeof million_nulls);
  nested[361] = ']';
  ck_assert_str_eq(refuse(nested, sizeof nested),
                   "byte 5: count 1048576 of 'Z' elements (no bytes each) is more than the "
                   "input's 362 bytes justify (5792 more such elements at most, 16 per input "
                   "byte)");
  /* The budget is for the whole input, not per container: 10 arrays of 255 true in 62 bytes
   * (992 allowed) decode three and refuse the fourth. */
  unsigned char many[62] = {'['};
  const unsigned char trues[] = {'[', '$', 'T', '#', 'U', 0xff};
  for (size_t i = 0; i < 10; i++) memcpy(many + 1 + i * sizeof trues, trues, sizeof trues);
  many[61] = ']';
  ck_assert_str_eq(refuse(many, sizeof many),
                   "byte 23: count 255 of 'T' elements (no bytes each) is more than the input's "
                   "62 bytes justify (227 more such elements at most, 16 per input byte)");
  /* Within the budget they decode: 96 false in 6 bytes... */
  unsigned char falses[] = {'[', '$', 'F', '#', 'i', 96};
  json_t *v = decode(falses, sizeof falses);
  ck_assert_int_eq(json_array_size(v), 96);
  ck_assert(json_is_false(json_array_get(v, 95)));
  json_decref(v);
  falses[5] = 97;
  ck_assert_ptr_nonnull(strstr(refuse(falses, sizeof falses), "byte 4: count 97 of 'F'"));
  /* ... and a typed object's keys take bytes, so its count is bounded by the bytes left. */
  const unsigned char object[] = {'{', '$', 'Z', '#', 'U', 5, 'i', 1, 'a', 'i', 1, 'b'};
  ck_assert_ptr_nonnull(strstr(refuse(object, sizeof object), "more than the bytes left"));
}
END_TEST

START_TEST(files_name_their_path) {
  vd_error err = {0};
  ck_assert_ptr_null(vd_ubjson_load_file("/nonexistent/model.ubj", 1024, &err));
  char path[] = "/tmp/vd-ubjson-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "[TF", 3), 3); /* an array that never ends */
  close(fd);
  ck_assert_ptr_null(vd_ubjson_load_file(path, 1024, &err));
  ck_assert_msg(strstr(err.message, path) && strstr(err.message, "truncated"), "%s", err.message);
  unlink(path);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ubjson");
  TCase *tc = tcase_create("ubjson");
  tcase_add_test(tc, scalars_of_every_type);
  tcase_add_test(tc, containers_plain_typed_and_counted);
  tcase_add_test(tc, malformed_input_is_refused_with_its_offset);
  tcase_add_test(tc, zero_payload_counts_are_bounded_by_the_input_size);
  tcase_add_test(tc, files_name_their_path);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
