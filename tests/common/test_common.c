/* The shared helpers: errors, buffers, argument parsing, hashing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_error.h"
#include "vd_hash.h"
#include "vd_json_file.h"
#include "vd_json_path.h"
#include "vd_test.h"
#include "vd_utf8.h"

START_TEST(error_formats_file_position) {
  vd_error e;
  ck_assert(!vd_error_at(&e, "rules.yaml", 3, 7, "unknown field '%s'", "subject.recncy"));
  char buf[600];
  vd_error_format(&e, buf, sizeof buf);
  ck_assert_str_eq(buf, "rules.yaml:3:7: unknown field 'subject.recncy'");
}
END_TEST

START_TEST(error_formats_field_and_prefix) {
  vd_error e;
  vd_error_field(&e, "subject.recency", "expected int");
  vd_error_prefix(&e, "request");
  char buf[600];
  vd_error_format(&e, buf, sizeof buf);
  ck_assert_str_eq(buf, "subject.recency: request: expected int");
}
END_TEST

/* A message longer than the buffer is cut on a character boundary, never inside one (which is
 * not UTF-8, and a JSON error answer would lose it); also after a prefix. */
START_TEST(a_long_message_is_cut_on_a_character_boundary) {
  char text[VD_ERROR_MESSAGE_MAX + 8];
  for (int shift = 0; shift < 4; shift++) {
    memset(text, 'a', (size_t)shift);
    size_t n = (size_t)shift;
    while (n + 2 < sizeof text - 1) { /* "é" (2 bytes) again and again */
      text[n++] = (char)0xC3;
      text[n++] = (char)0xA9;
    }
    text[n] = '\0';
    vd_error e = {0};
    vd_error_set(&e, "%s", text);
    size_t len = strlen(e.message);
    ck_assert_uint_ge(len, VD_ERROR_MESSAGE_MAX - 2);
    ck_assert_uint_eq(vd_utf8_valid_prefix(e.message, len), len);
    vd_error_prefix(&e, "x");
    len = strlen(e.message);
    ck_assert_uint_eq(vd_utf8_valid_prefix(e.message, len), len);
  }
  ck_assert_uint_eq(vd_utf8_whole_prefix("ab\xe2\x82", 4), 2); /* "€" cut after 2 of 3 */
  ck_assert_uint_eq(vd_utf8_whole_prefix("ab\xe2\x82\xac", 5), 5);
  ck_assert_uint_eq(vd_utf8_whole_prefix("ab\xf0", 3), 2);
  ck_assert_uint_eq(vd_utf8_whole_prefix("abc", 3), 3);
}
END_TEST

START_TEST(diags_collect_every_error) {
  vd_diags d = {0};
  vd_error e;
  for (int i = 0; i < 20; i++) {
    vd_error_set(&e, "error %d", i);
    ck_assert(vd_diags_add(&d, &e));
  }
  ck_assert_uint_eq(d.count, 20);
  ck_assert_str_eq(d.items[19].message, "error 19");
  vd_diags_free(&d);
  ck_assert_uint_eq(d.count, 0);
}
END_TEST

START_TEST(buf_grows_and_takes) {
  vd_buf b = {0};
  for (int i = 0; i < 1000; i++) vd_buf_printf(&b, "%d,", i);
  ck_assert_uint_eq(b.len, strlen(b.data));
  ck_assert_int_eq(strncmp(b.data, "0,1,2,", 6), 0);
  char *s = vd_buf_take(&b);
  ck_assert_ptr_null(b.data);
  free(s);
}
END_TEST

START_TEST(args_parse_values_flags_positionals) {
  vd_option opts[] = {{"config", true, NULL, ""}, {"quiet", false, NULL, ""}};
  char *argv[] = {"serve", "--config", "x.yaml", "a", "--quiet", "--", "--b", NULL};
  const char *pos[4];
  size_t npos;
  bool help;
  vd_error e;
  ck_assert(vd_args_parse(7, argv, 1, opts, 2, pos, 4, &npos, &help, &e));
  ck_assert_str_eq(vd_args_get(opts, 2, "config"), "x.yaml");
  ck_assert_str_eq(vd_args_get(opts, 2, "quiet"), "1");
  ck_assert_uint_eq(npos, 2);
  ck_assert_str_eq(pos[1], "--b");
  ck_assert(!help);
}
END_TEST

START_TEST(args_refuse_unknown_and_missing_value) {
  vd_option opts[] = {{"config", true, NULL, ""}};
  const char *pos[1];
  size_t npos;
  bool help;
  vd_error e;
  char *bad[] = {"serve", "--confg", "x", NULL};
  ck_assert(!vd_args_parse(3, bad, 1, opts, 1, pos, 1, &npos, &help, &e));
  ck_assert_str_eq(e.message, "unknown option --confg");
  char *missing[] = {"serve", "--config", NULL};
  ck_assert(!vd_args_parse(2, missing, 1, opts, 1, pos, 1, &npos, &help, &e));
  ck_assert_str_eq(e.message, "option --config needs a value");
  /* An empty value is no value, in either spelling. */
  char *empty_eq[] = {"serve", "--config=", NULL};
  ck_assert(!vd_args_parse(2, empty_eq, 1, opts, 1, pos, 1, &npos, &help, &e));
  ck_assert_str_eq(e.message, "option --config needs a value (got an empty one)");
  char *empty_arg[] = {"serve", "--config", "", NULL};
  ck_assert(!vd_args_parse(3, empty_arg, 1, opts, 1, pos, 1, &npos, &help, &e));
  ck_assert_str_eq(e.message, "option --config needs a value (got an empty one)");
}
END_TEST

/* "--deployment --in x.csv" took "--in" as the folder: a value given apart that is one of the
 * verb's options (or --help) is a forgotten value. "--name=--in" passes such a value; anything
 * else starting with "--" is a value as before. */
START_TEST(args_refuse_an_option_as_a_value) {
  vd_option opts[] = {{"deployment", true, NULL, ""}, {"in", true, NULL, ""}};
  const char *pos[2];
  size_t npos;
  bool help;
  vd_error e;
  char *forgot[] = {"score", "--deployment", "--in", "x.csv", NULL};
  ck_assert(!vd_args_parse(4, forgot, 1, opts, 2, pos, 2, &npos, &help, &e));
  ck_assert_str_eq(e.message,
                   "option --deployment needs a value (got the option --in; a value "
                   "that starts with '--' is written --deployment=VALUE)");
  char *forgot_eq[] = {"score", "--deployment", "--in=x.csv", NULL};
  ck_assert(!vd_args_parse(3, forgot_eq, 1, opts, 2, pos, 2, &npos, &help, &e));
  char *forgot_help[] = {"score", "--in", "--help", NULL};
  ck_assert(!vd_args_parse(3, forgot_help, 1, opts, 2, pos, 2, &npos, &help, &e));
  char *explicit[] = {"score", "--deployment=--in", NULL};
  ck_assert(vd_args_parse(2, explicit, 1, opts, 2, pos, 2, &npos, &help, &e));
  ck_assert_str_eq(vd_args_get(opts, 2, "deployment"), "--in");
  opts[0].value = NULL;
  char *other[] = {"score", "--deployment", "--not-an-option", NULL};
  ck_assert(vd_args_parse(3, other, 1, opts, 2, pos, 2, &npos, &help, &e));
  ck_assert_str_eq(vd_args_get(opts, 2, "deployment"), "--not-an-option");
}
END_TEST

/* An empty positional ("verdict rules check ''") names nothing, like an empty option value. */
START_TEST(args_refuse_an_empty_positional) {
  vd_option opts[] = {{"config", true, NULL, ""}};
  const char *pos[2];
  size_t npos;
  bool help;
  vd_error e;
  char *empty[] = {"check", "a.yaml", "", NULL};
  ck_assert(!vd_args_parse(3, empty, 1, opts, 1, pos, 2, &npos, &help, &e));
  ck_assert_str_eq(e.message, "argument 2 is empty (an empty argument names nothing)");
  char *after_dashes[] = {"check", "--", "", NULL};
  ck_assert(!vd_args_parse(3, after_dashes, 1, opts, 1, pos, 2, &npos, &help, &e));
  ck_assert_str_eq(e.message, "argument 1 is empty (an empty argument names nothing)");
}
END_TEST

/* A fresh folder (dir: a mkdtemp template) holding a FIFO at fifo ("DIR/fifoEXT"); file is
 * "DIR/fileEXT" beside it, not made. */
static void make_fifo_dir(char *dir, const char *ext, char fifo[64], char file[64]) {
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(fifo, 64, "%s/fifo%s", dir, ext);
  snprintf(file, 64, "%s/file%s", dir, ext);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
}

static void remove_fifo_dir(const char *dir, const char *fifo, const char *file) {
  unlink(fifo);
  unlink(file);
  rmdir(dir);
}

/* Files are read only when regular: a FIFO would block the open, /dev/zero never ends. */
/* A JSON file a user names: refused at once unless regular, and a syntax error says where. */
START_TEST(json_files_are_read_only_when_regular) {
  alarm(20);
  char dir[] = "/tmp/vd-json-file-XXXXXX", fifo[64], file[64];
  make_fifo_dir(dir, ".json", fifo, file);
  vd_error err = {0};
  ck_assert_ptr_null(vd_json_load_file(fifo, 1024, 0, &err));
  ck_assert_msg(strstr(err.message, fifo) && strstr(err.message, "is a FIFO"), "%s", err.message);
  ck_assert_ptr_null(vd_json_load_file("/dev/zero", 1024, 0, &err));
  ck_assert_msg(strstr(err.message, "/dev/zero is a character device"), "%s", err.message);
  FILE *f = fopen(file, "w");
  fputs("{\"a\": 1,\n \"a\": 2}", f);
  fclose(f);
  json_t *v = vd_json_load_file(file, 1024, 0, &err);
  ck_assert_int_eq(json_integer_value(json_object_get(v, "a")), 2);
  json_decref(v);
  ck_assert_ptr_null(vd_json_load_file(file, 1024, JSON_REJECT_DUPLICATES, &err));
  ck_assert_str_eq(err.file, file);
  ck_assert_int_eq(err.line, 2);
  ck_assert_msg(strstr(err.message, "not valid JSON: duplicate object key"), "%s", err.message);
  ck_assert_ptr_null(vd_json_load_file(file, 4, 0, &err));
  ck_assert_msg(strstr(err.message, "larger than the 4-byte limit"), "%s", err.message);
  remove_fifo_dir(dir, fifo, file);
}
END_TEST

START_TEST(only_regular_files_are_opened) {
  alarm(20);
  char dir[] = "/tmp/vd-regular-XXXXXX", fifo[64], file[64];
  make_fifo_dir(dir, "", fifo, file);
  FILE *f = fopen(file, "w");
  fputs("text", f);
  fclose(f);
  vd_error err = {0};
  ck_assert_ptr_null(vd_read_file(fifo, 1024, NULL, &err));
  ck_assert_msg(strstr(err.message, "is a FIFO (named pipe), not a regular file"), "%s",
                err.message);
  ck_assert_ptr_null(vd_read_file("/dev/zero", 1024, NULL, &err));
  ck_assert_msg(strstr(err.message, "/dev/zero is a character device"), "%s", err.message);
  ck_assert_ptr_null(vd_fopen_regular(dir, &err));
  ck_assert_msg(strstr(err.message, "is a folder"), "%s", err.message);
  char hex[VD_SHA256_HEX_SIZE];
  ck_assert(!vd_sha256_file_hex(fifo, hex, &err));
  ck_assert_msg(strstr(err.message, "FIFO"), "%s", err.message);
  size_t size = 0;
  char *text = vd_read_file(file, 1024, &size, &err);
  ck_assert_str_eq(text, "text");
  free(text);
  int fd = vd_open_regular(file, &err);
  ck_assert_int_ge(fd, 0);
  char byte = 0;
  ck_assert_int_eq(read(fd, &byte, 1), 1); /* an ordinary blocking descriptor */
  close(fd);
  remove_fifo_dir(dir, fifo, file);
  alarm(0);
}
END_TEST

/* Files a user names for output: a FIFO (whose open would wait for a reader for ever), a device
 * or a folder is refused at once saying which; a new file is created, an old one truncated or
 * appended to. */
START_TEST(only_regular_files_are_written) {
  alarm(20);
  char dir[] = "/tmp/vd-regular-XXXXXX", fifo[64], file[64];
  make_fifo_dir(dir, "", fifo, file);
  vd_error err = {0};
  ck_assert_ptr_null(vd_fopen_write_regular(fifo, &err));
  ck_assert_msg(strstr(err.message, "/fifo is a FIFO (named pipe), not a regular file"), "%s",
                err.message);
  ck_assert_int_lt(vd_open_write_regular(fifo, O_APPEND, &err), 0);
  ck_assert_msg(strstr(err.message, "is a FIFO"), "%s", err.message);
  ck_assert_ptr_null(vd_fopen_write_regular("/dev/null", &err));
  ck_assert_str_eq(err.message, "/dev/null is a character device, not a regular file");
  ck_assert_ptr_null(vd_fopen_write_regular(dir, &err));
  ck_assert_msg(strstr(err.message, "is a folder"), "%s", err.message);
  FILE *f = vd_fopen_write_regular(file, &err); /* created */
  ck_assert_msg(f != NULL, "%s", err.message);
  fputs("first, longer text", f);
  ck_assert_int_eq(fclose(f), 0);
  f = vd_fopen_write_regular(file, &err); /* truncated */
  ck_assert_ptr_nonnull(f);
  fputs("second", f);
  ck_assert_int_eq(fclose(f), 0);
  int fd = vd_open_write_regular(file, O_APPEND, &err);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "+", 1), 1); /* an ordinary blocking descriptor */
  close(fd);
  char *text = vd_read_file(file, 1024, NULL, &err);
  ck_assert_str_eq(text, "second+");
  free(text);
  remove_fifo_dir(dir, fifo, file);
  alarm(0);
}
END_TEST

START_TEST(sha256_known_vector) {
  char hex[VD_SHA256_HEX_SIZE];
  vd_sha256_hex("abc", 3, hex);
  ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* A dotted path is looked up one component at a time; a missing, empty or over-long component
 * or a step through a non-object finds nothing, and keys that only start like a component do not
 * match it. */
START_TEST(json_paths_are_looked_up_component_by_component) {
  json_t *root = json_loads(
      "{\"subject\": {\"recency\": 3, \"rec\": 1, \"address\": {\"country\": \"FR\"}}, \"n\": 2}",
      0, NULL);
  ck_assert_ptr_nonnull(root);
  ck_assert_int_eq(json_integer_value(vd_json_get_path(root, "subject.recency")), 3);
  ck_assert_int_eq(json_integer_value(vd_json_get_path(root, "subject.rec")), 1);
  ck_assert_str_eq(json_string_value(vd_json_get_path(root, "subject.address.country")), "FR");
  ck_assert_ptr_eq(vd_json_get_path(root, ""), root);
  ck_assert_ptr_eq(vd_json_get_path(root, "subject."), json_object_get(root, "subject"));
  ck_assert_ptr_null(vd_json_get_path(root, "subject.recenc"));
  ck_assert_ptr_null(vd_json_get_path(root, "subject.recencyy"));
  ck_assert_ptr_null(vd_json_get_path(root, "subj.recency"));
  ck_assert_ptr_null(vd_json_get_path(root, "subject..recency"));
  ck_assert_ptr_null(vd_json_get_path(root, ".subject"));
  ck_assert_ptr_null(vd_json_get_path(root, "n.x")); /* through a number */
  char long_key[300];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  json_object_set_new(root, long_key, json_true());
  ck_assert_ptr_null(vd_json_get_path(root, long_key)); /* components stop at 255 bytes */
  json_decref(root);
}
END_TEST

int main(void) {
  Suite *s = suite_create("common");
  TCase *tc = tcase_create("helpers");
  tcase_add_test(tc, error_formats_file_position);
  tcase_add_test(tc, error_formats_field_and_prefix);
  tcase_add_test(tc, a_long_message_is_cut_on_a_character_boundary);
  tcase_add_test(tc, diags_collect_every_error);
  tcase_add_test(tc, buf_grows_and_takes);
  tcase_add_test(tc, args_parse_values_flags_positionals);
  tcase_add_test(tc, args_refuse_unknown_and_missing_value);
  tcase_add_test(tc, args_refuse_an_option_as_a_value);
  tcase_add_test(tc, args_refuse_an_empty_positional);
  tcase_add_test(tc, sha256_known_vector);
  tcase_add_test(tc, only_regular_files_are_opened);
  tcase_add_test(tc, only_regular_files_are_written);
  tcase_add_test(tc, json_files_are_read_only_when_regular);
  tcase_add_test(tc, json_paths_are_looked_up_component_by_component);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
