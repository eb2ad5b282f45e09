/* `verdict score`: batch scoring of CSV and JSON Lines through the server's pipeline, one output
 * line per input row in order, rejected rows with their line and reasons, the summary, usage. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_batch.h"
#include "vd_batch_input.h"
#include "vd_buf.h"
#include "vd_deployment.h"
#include "vd_json_write.h"
#include "vd_pipeline.h"
#include "vd_test.h"

static const char *deployment_dir = VERDICT_SOURCE_DIR "/examples/promotions";

static const char *hillstrom_rows =
    "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,"
    "conversion,spend\n"
    "6,3) $200 - $350,329.08,1,1,Rural,1,Web,No E-Mail,0,0,0\n"
    "7,2) $100 - $200,180.65,0,1,Surburban,1,Web,Womens E-Mail,0,0,0\n"
    "9,2) $100 - $200,180.65,0,1,Surburban,1,Phone,Womens E-Mail,0,0,0\n"
    "2,1) $0 - $100,45.34,1,0,Urban,0,Multichannel,Mens E-Mail,1,0,0\n";

typedef struct captured {
  int code;
  char *out;
  char *err;
} captured;

static captured run_score(const char *const *args) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "score";
  for (; *args && argc < 31; args++) argv[argc++] = (char *)*args;
  argv[argc] = NULL;
  captured c = {0};
  size_t ol = 0, el = 0;
  FILE *out = open_memstream(&c.out, &ol);
  FILE *err = open_memstream(&c.err, &el);
  c.code = vd_verb_score(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return c;
}

static void captured_free(captured *c) {
  free(c->out);
  free(c->err);
}

static char *temp_file(const char *suffix, const char *text) {
  char *path = NULL;
  ck_assert_int_gt(asprintf(&path, "/tmp/vd-score-XXXXXX%s", suffix), 0);
  int fd = mkstemps(path, (int)strlen(suffix));
  ck_assert_int_ge(fd, 0);
  if (text) ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

/* The output file's lines as JSON values. */
static json_t *read_lines(const char *path) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  json_t *lines = json_array();
  char *buf = NULL;
  size_t size = 0;
  while (getline(&buf, &size, f) > 0) {
    json_error_t jerr;
    json_t *v = json_loads(buf, 0, &jerr);
    ck_assert_msg(v != NULL, "output line is not JSON: %s", jerr.text);
    json_array_append_new(lines, v);
  }
  free(buf);
  fclose(f);
  return lines;
}

START_TEST(csv_rows_are_scored_against_every_candidate) {
  char *in = temp_file(".csv", hillstrom_rows);
  char *out = temp_file(".jsonl", NULL);
  const char *args[] = {"--deployment", deployment_dir, "--in", in, "--out", out, NULL};
  captured c = run_score(args);
  ck_assert_msg(c.code == 0, "exit %d: %s", c.code, c.err);
  json_t *lines = read_lines(out);
  ck_assert_uint_eq(json_array_size(lines), 4);
  for (size_t i = 0; i < 4; i++) {
    json_t *l = json_array_get(lines, i);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "line")), (json_int_t)i + 2);
    ck_assert(json_is_string(json_object_get(l, "decision_id")));
    json_t *results = json_object_get(l, "results");
    ck_assert_uint_eq(json_array_size(results), 2); /* mens-email and womens-email */
    json_t *first = json_array_get(results, 0);
    if (json_is_true(json_object_get(first, "eligible"))) {
      json_t *model = json_object_get(first, "model");
      ck_assert(json_is_real(json_object_get(model, "p_treatment")));
      ck_assert(json_is_real(json_object_get(model, "uplift")));
    }
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(l, "ruleset"), "name")),
                     "promotions");
  }
  /* each line is written as the API writes its bodies: reals in their shortest round-trip form */
  size_t size = 0;
  vd_error read_err = {0};
  char *text = vd_read_file(out, 1 << 20, &size, &read_err);
  ck_assert_msg(text != NULL, "%s", read_err.message);
  char *line = text;
  for (size_t i = 0; i < 4; i++) {
    char *end = strchr(line, '\n');
    ck_assert_ptr_nonnull(end);
    char *shortest = vd_json_dumps_shortest(json_array_get(lines, i), NULL);
    ck_assert_int_eq((int)strlen(shortest), (int)(end - line));
    ck_assert(strncmp(shortest, line, (size_t)(end - line)) == 0);
    free(shortest);
    line = end + 1;
  }
  free(text);
  /* the summary goes to stdout when the results go to a file */
  ck_assert_ptr_nonnull(strstr(c.out, "rows: 4 (decided 4, rejected 0)"));
  ck_assert_ptr_nonnull(strstr(c.out, "decisions by action"));
  ck_assert_ptr_nonnull(strstr(c.out, "ignored columns: segment visit conversion spend"));
  json_decref(lines);
  captured_free(&c);
  unlink(in);
  unlink(out);
  free(in);
  free(out);
}
END_TEST

/* The verb's results equal the pipeline's own for the same request (the same decision path). */
START_TEST(results_equal_the_pipeline_called_directly) {
  char *in = temp_file(".csv", hillstrom_rows);
  char *out = temp_file(".jsonl", NULL);
  const char *args[] = {"--deployment", deployment_dir, "--in", in, "--out", out, NULL};
  captured c = run_score(args);
  ck_assert_int_eq(c.code, 0);
  json_t *lines = read_lines(out);

  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(deployment_dir, &(vd_deployment_load_options){0}, &diags);
  ck_assert_ptr_nonnull(d);
  char map[512];
  snprintf(map, sizeof map, "%s/batch.yaml", deployment_dir);
  vd_batch_mapping *m = vd_batch_mapping_load(map, NULL);
  vd_batch_reader *r = vd_batch_reader_open(in, VD_BATCH_AUTO, vd_deployment_schema(d), m, NULL);
  ck_assert_ptr_nonnull(r);
  for (size_t i = 0; i < 4; i++) {
    json_t *req = NULL;
    size_t line = 0;
    ck_assert_int_eq(vd_batch_reader_next(r, &req, &line, NULL, NULL), VD_BATCH_ROW);
    vd_pipeline_input input = {.request = req, .decision_id = "direct"};
    vd_decision decision = {0};
    vd_error err = {0};
    ck_assert_int_eq(vd_pipeline_decide(d, &input, &decision, NULL, &err), VD_PIPELINE_OK);
    json_t *batch = json_array_get(lines, i);
    ck_assert(json_equal(json_object_get(batch, "results"),
                         json_object_get(decision.response, "results")));
    ck_assert(
        json_equal(json_object_get(batch, "model"), json_object_get(decision.response, "model")));
    vd_decision_clear(&decision);
    json_decref(req);
  }
  vd_batch_reader_close(r);
  vd_batch_mapping_free(m);
  vd_deployment_release(d);
  json_decref(lines);
  captured_free(&c);
  unlink(in);
  unlink(out);
  free(in);
  free(out);
}
END_TEST

START_TEST(rejected_rows_keep_their_line_and_reasons) {
  const char *jsonl =
      "{\"subject\": {\"id\": \"c1\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
      "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
      "\"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"}}\n"
      "{\"subject\": {\"id\": \"c2\", \"recency\": 13}}\n"
      "\n"
      "{\"subject\": \n";
  char *in = temp_file(".jsonl", jsonl);
  const char *args[] = {"--deployment", deployment_dir, "--in", in, NULL};
  captured c = run_score(args); /* results on stdout, summary on stderr */
  ck_assert_int_eq(c.code, 1);
  char *second = strchr(c.out, '\n');
  ck_assert_ptr_nonnull(second);
  json_t *l1 = json_loadb(c.out, (size_t)(second - c.out), 0, NULL);
  ck_assert_int_eq(json_integer_value(json_object_get(l1, "line")), 1);
  ck_assert_ptr_nonnull(json_object_get(l1, "results"));
  json_t *l2 = json_loads(second + 1, JSON_DISABLE_EOF_CHECK, NULL);
  ck_assert_int_eq(json_integer_value(json_object_get(l2, "line")), 2);
  json_t *error = json_object_get(l2, "error");
  ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "invalid_request");
  ck_assert_uint_ge(json_array_size(json_object_get(error, "violations")), 2);
  char *third = strchr(second + 1, '\n');
  json_t *l4 = json_loads(third + 1, JSON_DISABLE_EOF_CHECK, NULL);
  ck_assert_int_eq(json_integer_value(json_object_get(l4, "line")), 4); /* blank line 3 skipped */
  ck_assert_ptr_nonnull(
      strstr(json_string_value(json_object_get(json_object_get(l4, "error"), "message")), "JSON"));
  ck_assert_ptr_nonnull(strstr(c.err, "rows: 3 (decided 1, rejected 2)"));
  ck_assert_ptr_nonnull(strstr(c.err, "rows rejected, by reason:"));
  ck_assert_ptr_nonnull(strstr(c.err, "subject.recency"));
  json_decref(l1);
  json_decref(l2);
  json_decref(l4);
  captured_free(&c);
  unlink(in);
  free(in);
}
END_TEST

/* A violation quoting a value cut inside a character still reaches the output line (the cut
 * message was refused by jansson, and the line read {"line":1} with no error). */
START_TEST(a_violation_with_a_cut_character_is_written) {
  char zip[128] = "R";
  for (int i = 0; i < 40; i++) strcat(zip, "\xc3\xa9");
  char jsonl[1024];
  snprintf(jsonl, sizeof jsonl,
           "{\"subject\": {\"id\": \"c1\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
           "\"womens\": true, \"zip_code\": \"%s\", \"newbie\": true, \"channel\": \"Web\", "
           "\"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"}}\n",
           zip);
  char *in = temp_file(".jsonl", jsonl);
  const char *args[] = {"--deployment", deployment_dir, "--in", in, NULL};
  captured c = run_score(args);
  ck_assert_int_eq(c.code, 1);
  json_t *l1 = json_loads(c.out, JSON_DISABLE_EOF_CHECK, NULL);
  ck_assert_msg(l1 != NULL, "%s", c.out);
  json_t *violations = json_object_get(json_object_get(l1, "error"), "violations");
  ck_assert_msg(json_array_size(violations) == 1, "%s", c.out);
  const char *m = json_string_value(json_object_get(json_array_get(violations, 0), "message"));
  ck_assert_msg(m && strstr(m, "got \"R\xc3\xa9"), "%s", c.out);
  json_decref(l1);
  captured_free(&c);
  unlink(in);
  free(in);
}
END_TEST

START_TEST(parallel_jobs_keep_the_input_order) {
  char path[512];
  if (!vd_test_shared_path("data/hillstrom/hillstrom.csv", path, sizeof path)) return;
  /* the first 600 rows: more than one block of rows */
  FILE *src = fopen(path, "r");
  char *in = temp_file(".csv", NULL);
  FILE *dst = fopen(in, "w");
  char buf[512];
  for (int i = 0; i < 601 && fgets(buf, sizeof buf, src); i++) fputs(buf, dst);
  fclose(src);
  fclose(dst);
  char *out1 = temp_file(".jsonl", NULL), *out2 = temp_file(".jsonl", NULL);
  const char *a1[] = {"--deployment", deployment_dir, "--in", in,  "--out",
                      out1,           "--jobs",       "1",    NULL};
  const char *a2[] = {"--deployment", deployment_dir, "--in", in,  "--out",
                      out2,           "--jobs",       "3",    NULL};
  captured c1 = run_score(a1), c2 = run_score(a2);
  ck_assert_int_eq(c1.code, 0);
  ck_assert_int_eq(c2.code, 0);
  json_t *l1 = read_lines(out1), *l2 = read_lines(out2);
  ck_assert_uint_eq(json_array_size(l1), 600);
  ck_assert_uint_eq(json_array_size(l2), 600);
  for (size_t i = 0; i < 600; i++) {
    json_t *x = json_array_get(l1, i), *y = json_array_get(l2, i);
    ck_assert_int_eq(json_integer_value(json_object_get(y, "line")), (json_int_t)i + 2);
    ck_assert(json_equal(json_object_get(x, "results"), json_object_get(y, "results")));
  }
  json_decref(l1);
  json_decref(l2);
  captured_free(&c1);
  captured_free(&c2);
  unlink(in);
  unlink(out1);
  unlink(out2);
  free(in);
  free(out1);
  free(out2);
}
END_TEST

START_TEST(bad_usage_and_bad_files_exit_2) {
  const char *no_in[] = {"--deployment", deployment_dir, NULL};
  captured c = run_score(no_in);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "--in FILE is required"));
  captured_free(&c);
  const char *unknown[] = {"--deployment", deployment_dir, "--in", "x.csv", "--frob", NULL};
  c = run_score(unknown);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "unknown option --frob"));
  captured_free(&c);
  const char *jobs[] = {"--deployment", deployment_dir, "--in", "x.csv", "--jobs", "0", NULL};
  c = run_score(jobs);
  ck_assert_int_eq(c.code, 2);
  captured_free(&c);
  const char *help[] = {"--help", NULL};
  c = run_score(help);
  ck_assert_int_eq(c.code, 0);
  ck_assert_ptr_nonnull(strstr(c.out, "usage: verdict score"));
  captured_free(&c);
  char *bad = temp_file(".csv", "recency,histroy\n1,2\n");
  const char *bad_col[] = {"--deployment", deployment_dir, "--in", bad, NULL};
  c = run_score(bad_col);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, ":1:9: column 2 ('histroy') fills no field"));
  captured_free(&c);
  unlink(bad);
  free(bad);
  const char *missing[] = {"--deployment", deployment_dir, "--in", "/nonexistent/in.csv", NULL};
  c = run_score(missing);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "/nonexistent/in.csv"));
  captured_free(&c);
  const char *no_dep[] = {"--deployment", "/nonexistent-dep", "--in", "x.csv", NULL};
  c = run_score(no_dep);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "did not load"));
  captured_free(&c);
  /* --out naming the input would overwrite it: refused, the input untouched */
  char *in = temp_file(".csv", hillstrom_rows);
  const char *same[] = {"--deployment", deployment_dir, "--in", in, "--out", in, NULL};
  c = run_score(same);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "is the input file"));
  captured_free(&c);
  size_t size = 0;
  vd_error read_err = {0};
  char *kept = vd_read_file(in, 1 << 20, &size, &read_err);
  ck_assert_str_eq(kept, hillstrom_rows);
  free(kept);
  /* --out naming a FIFO: refused at once (opening it to write would wait for a reader) */
  alarm(20);
  char fifo[] = "/tmp/vd-score-fifo-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(fifo));
  ck_assert_int_eq(rmdir(fifo), 0);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *to_fifo[] = {"--deployment", deployment_dir, "--in", in, "--out", fifo, NULL};
  c = run_score(to_fifo);
  ck_assert_int_eq(c.code, 2);
  char expected[128];
  snprintf(expected, sizeof expected, "--out: %s is a FIFO (named pipe), not a regular file", fifo);
  ck_assert_msg(strstr(c.err, expected), "%s", c.err);
  captured_free(&c);
  alarm(0);
  unlink(fifo);
  unlink(in);
  free(in);
}
END_TEST

/* A model the deployment names but that does not load stops the run (exit 2, the bundle named);
 * a campaign is never scored on rules alone by accident. */
START_TEST(a_broken_model_stops_the_run) {
  char dir[] = "/tmp/vd-score-dep-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char command[1024];
  snprintf(command, sizeof command,
           "cp -r '%s'/. '%s' && printf '{\"learner\": 1}' > '%s/model/model.json'", deployment_dir,
           dir, dir);
  ck_assert_int_eq(system(command), 0);
  char *in = temp_file(".csv", hillstrom_rows);
  const char *args[] = {"--deployment", dir, "--in", in, NULL};
  captured c = run_score(args);
  ck_assert_int_eq(c.code, 2);
  ck_assert_msg(strstr(c.err, "model bundle") && strstr(c.err, "refused"), "%s", c.err);
  ck_assert_ptr_null(strstr(c.out, "\"line\""));
  captured_free(&c);
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
  unlink(in);
  free(in);
}
END_TEST

/* A row whose decision fails (the API answers it 500) gets one error line and the run goes on (the
 * whole batch stopped with exit 2 and an empty --out). No rule file can make a score non-finite
 * any more (vd_ruleset.h: VD_RULES_ADJUST_MAX), so the failure is injected: the pipeline's first
 * allocation for a request naming FAULT_CANDIDATES candidates fails, as memory running out would.
 * glibc lets the program replace calloc; under a sanitizer, which owns the allocator, the
 * injection is compiled out and that part of the test skipped. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VD_INJECT_CALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VD_INJECT_CALLOC 0
#endif
#endif
#ifndef VD_INJECT_CALLOC
#define VD_INJECT_CALLOC 1
#endif

enum { FAULT_CANDIDATES = 97, DEPLOYMENT_CANDIDATES = 2 };

#if VD_INJECT_CALLOC
extern void *__libc_calloc(size_t n, size_t size);
void *calloc(size_t n, size_t size) {
  if (n == DEPLOYMENT_CANDIDATES + FAULT_CANDIDATES && size == sizeof(void *)) return NULL;
  return __libc_calloc(n, size);
}
#endif

START_TEST(a_row_whose_decision_fails_gets_an_error_line) {
  if (!VD_INJECT_CALLOC) {
    printf("SKIP: calloc cannot be replaced under a sanitizer\n");
    return;
  }
  const char *subject =
      "{\"subject\": {\"id\": \"c1\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
      "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
      "\"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"}";
  vd_buf jsonl = {0};
  vd_buf_printf(&jsonl, "%s}\n%s, \"candidates\": [", subject, subject);
  for (int i = 0; i < FAULT_CANDIDATES; i++)
    vd_buf_printf(&jsonl, "%s{\"id\": \"c%d\"}", i ? ", " : "", i);
  vd_buf_printf(&jsonl, "]}\n%s}\n", subject);
  char *in = temp_file(".jsonl", jsonl.data), *out = temp_file(".jsonl", NULL);
  vd_buf_free(&jsonl);
  const char *args[] = {"--deployment", deployment_dir, "--in", in, "--out", out, NULL};
  captured c = run_score(args);
  ck_assert_msg(c.code == 1, "exit %d: %s", c.code, c.err);
  json_t *lines = read_lines(out);
  ck_assert_uint_eq(json_array_size(lines), 3);
  for (size_t i = 0; i < 3; i++) {
    json_t *l = json_array_get(lines, i);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "line")), (json_int_t)i + 1);
    if (i != 1) {
      ck_assert_ptr_nonnull(json_object_get(l, "results"));
      continue;
    }
    const json_t *error = json_object_get(l, "error");
    ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "internal");
    ck_assert_str_eq(json_string_value(json_object_get(error, "message")),
                     "decision failed: out of memory");
  }
  ck_assert_msg(strstr(c.out, "rows: 3 (decided 2, rejected 1)"), "%s", c.out);
  ck_assert_ptr_nonnull(strstr(c.out, "decision failed: out of memory"));
  json_decref(lines);
  captured_free(&c);
  unlink(in);
  unlink(out);
  free(in);
  free(out);
}
END_TEST

/* A rule file whose adjustments could make a score non-finite (1e308, twice) does not load:
 * `verdict score` refuses the deployment, naming the value's place. */
START_TEST(an_adjustment_beyond_the_bound_refuses_the_deployment) {
  char dir[] = "/tmp/vd-score-dep-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char command[2048];
  snprintf(command, sizeof command,
           "cp -r '%s'/. '%s' && awk '/^tests:/ { exit } { print }' '%s/rules.yaml' > "
           "'%s/rules.new' && mv '%s/rules.new' '%s/rules.yaml' && for i in 1 2; do printf '"
           "  - id: huge-%%s\\n    stage: before_model\\n    when: subject.recency == 9\\n"
           "    then: { adjust: 1e308 }\\n' $i >> '%s/rules.yaml'; done",
           deployment_dir, dir, deployment_dir, dir, dir, dir, dir);
  ck_assert_int_eq(system(command), 0);
  char *in = temp_file(".csv", hillstrom_rows);
  const char *args[] = {"--deployment", dir, "--in", in, NULL};
  captured c = run_score(args);
  ck_assert_int_eq(c.code, 2);
  ck_assert_msg(strstr(c.err, "rules.yaml:") &&
                    strstr(c.err, "rule huge-1: adjust 1e+308 is beyond") &&
                    strstr(c.err, "rule huge-2: adjust 1e+308 is beyond"),
                "%s", c.err);
  ck_assert_ptr_null(strstr(c.out, "\"line\""));
  captured_free(&c);
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
  unlink(in);
  free(in);
}
END_TEST

int main(void) {
  Suite *s = suite_create("batch_score");
  TCase *tc = tcase_create("batch_score");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, csv_rows_are_scored_against_every_candidate);
  tcase_add_test(tc, results_equal_the_pipeline_called_directly);
  tcase_add_test(tc, rejected_rows_keep_their_line_and_reasons);
  tcase_add_test(tc, a_violation_with_a_cut_character_is_written);
  tcase_add_test(tc, parallel_jobs_keep_the_input_order);
  tcase_add_test(tc, bad_usage_and_bad_files_exit_2);
  tcase_add_test(tc, a_broken_model_stops_the_run);
  tcase_add_test(tc, a_row_whose_decision_fails_gets_an_error_line);
  tcase_add_test(tc, an_adjustment_beyond_the_bound_refuses_the_deployment);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
