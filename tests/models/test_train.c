/* Training: determinism (same data and spec → same bytes), the bundle it writes, spec errors
 * with file:line:col, and the verb's usage handling. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_models.h"
#include "vd_cli_verbs.h"
#include "vd_model.h"
#include "vd_test.h"
#include "vd_train.h"

#define SPEC VERDICT_SOURCE_DIR "/examples/promotions/train.yaml"

static bool data_path(char *buf, size_t size) {
  return vd_test_shared_path("data/hillstrom/hillstrom.csv", buf, size) != NULL;
}

static char *train_into(const char *data, const char *spec, char *dir, size_t rows) {
  ck_assert(mkdtemp(dir) != NULL);
  vd_train_options o = {.data_path = data, .spec_path = spec, .out_dir = dir, .max_rows = rows};
  char version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(vd_train_uplift(&o, version, &err), "%s", err.message);
  return strdup(version);
}

START_TEST(training_is_deterministic_and_writes_a_loadable_bundle) {
  char data[4096];
  if (!data_path(data, sizeof data)) return;
  char a[] = "/tmp/vd-train-a-XXXXXX", b[] = "/tmp/vd-train-b-XXXXXX";
  size_t rows = under_sanitizer() ? 1500 : 6000;
  char *va = train_into(data, SPEC, a, rows), *vb = train_into(data, SPEC, b, rows);
  ck_assert_str_eq(va, vb);
  const char *files[] = {"model.json", "manifest.json"};
  for (int i = 0; i < 2; i++) {
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
    snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
    size_t sa, sb;
    char *ta = slurp(pa, &sa), *tb = slurp(pb, &sb);
    ck_assert_msg(sa == sb && memcmp(ta, tb, sa) == 0, "%s differs between two runs", files[i]);
    free(ta);
    free(tb);
  }
  vd_error err = {0};
  vd_model *m = vd_model_load(a, NULL, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  ck_assert_str_eq(vd_model_version(m), va);
  const json_t *man = vd_model_manifest(m);
  const json_t *td = json_object_get(man, "training_data");
  ck_assert_int_eq(json_integer_value(json_object_get(td, "rows")), (json_int_t)rows);
  char sha[VD_SHA256_HEX_SIZE];
  ck_assert(vd_sha256_file_hex(data, sha, &err));
  ck_assert_str_eq(json_string_value(json_object_get(td, "sha256")), sha);
  const json_t *v = json_object_get(man, "validation");
  static const char *const keys[] = {"auc", "log_loss", "ece", "calibration", "uplift"};
  for (int i = 0; i < 5; i++) ck_assert_msg(json_object_get(v, keys[i]), "no %s", keys[i]);
  ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(v, "calibration"), "bins")),
                    10);
  const json_t *learner = json_object_get(man, "learner");
  ck_assert(json_object_get(json_object_get(learner, "comparison"), "s-learner"));
  ck_assert(json_object_get(json_object_get(learner, "comparison"), "t-learner"));
  ck_assert(json_is_string(json_object_get(learner, "reason")));
  vd_model_free(m);
  free(va);
  free(vb);
}
END_TEST

START_TEST(the_shipped_bundle_is_reproduced_byte_for_byte) {
  char data[4096];
  if (!data_path(data, sizeof data)) return;
  if (under_sanitizer())
    return; /* the full training run: Release only (the test above covers it) */
  char dir[] = "/tmp/vd-train-full-XXXXXX";
  char *v = train_into(data, SPEC, dir, 0);
  const char *files[] = {"model.json", "manifest.json"};
  for (int i = 0; i < 2; i++) {
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s/%s", dir, files[i]);
    snprintf(pb, sizeof pb, "%s/%s", SHIPPED_BUNDLE, files[i]);
    size_t sa, sb;
    char *ta = slurp(pa, &sa), *tb = slurp(pb, &sb);
    ck_assert_msg(sa == sb && memcmp(ta, tb, sa) == 0,
                  "%s differs from the shipped bundle: rerun scripts/train-promotions", files[i]);
    free(ta);
    free(tb);
  }
  free(v);
}
END_TEST

static void expect_spec_error(const char *yaml, const char *where, const char *problem) {
  char data[4096];
  if (!data_path(data, sizeof data)) return;
  char dir[] = "/tmp/vd-train-spec-XXXXXX";
  ck_assert(mkdtemp(dir) != NULL);
  write_text(dir, "train.yaml", yaml);
  char spec[4096];
  snprintf(spec, sizeof spec, "%s/train.yaml", dir);
  vd_train_options o = {.data_path = data, .spec_path = spec, .out_dir = dir, .max_rows = 500};
  char version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(!vd_train_uplift(&o, version, &err), "accepted:\n%s", yaml);
  char text[1024];
  vd_error_format(&err, text, sizeof text);
  ck_assert_msg(strstr(text, where) && strstr(text, problem), "\"%s\" lacks \"%s\" / \"%s\"", text,
                where, problem);
}

#define HEAD                                                                  \
  "model: t\ntask: uplift\nlabel: visit\n"                                    \
  "treatment: { column: segment, control: No E-Mail, arms: [Mens E-Mail] }\n" \
  "xgboost: { num_round: 3 }\n"

START_TEST(spec_errors_name_file_line_and_column) {
  expect_spec_error(HEAD
                    "features:\n  - { name: recency, source: subject.recency, encoding: text }\n",
                    "train.yaml:7:", "features[0].encoding: expected one of numeric, bool, enum");
  expect_spec_error(HEAD
                    "features:\n  - name: zip\n    source: subject.zip\n    column: zip_code\n"
                    "    encoding: enum\n    categories: [Urban]\n",
                    "train.yaml:7:", "unknown");
  expect_spec_error(HEAD
                    "colour: blue\nfeatures:\n  - { name: r, source: subject.r, column: recency, "
                    "encoding: numeric }\n",
                    "train.yaml:6:1:", "unknown key `colour`");
  expect_spec_error(
      "model: t\ntask: uplift\nlabel: visit\ntreatment: { column: segment, control: No E-Mail, "
      "arms: [Mens E-Mail] }\nxgboost: { num_round: 3, objective: reg:squarederror }\n"
      "features:\n  - { name: r, source: subject.r, column: recency, encoding: numeric }\n",
      "train.yaml:5:", "binary:logistic");
  expect_spec_error(
      HEAD "features:\n  - { name: r, source: subject.r, column: nope, encoding: numeric }\n",
      "hillstrom.csv:1", "no column \"nope\"");
  expect_spec_error(
      "model: t\ntask: uplift\nlabel: visit\ntreatment: { column: segment, control: No E-Mail, "
      "arms: [Kids E-Mail] }\nxgboost: { num_round: 3 }\n"
      "features:\n  - { name: r, source: subject.r, column: recency, encoding: numeric }\n",
      "hillstrom.csv:", "neither the control nor an arm");
}
END_TEST

/* A FIFO in the --out folder where model.json goes: refused at once, saying so (opening it to
 * write would wait for a reader for ever). */
START_TEST(a_fifo_in_the_out_folder_is_refused) {
  char data[4096];
  if (!data_path(data, sizeof data)) return;
  char dir[] = "/tmp/vd-train-fifo-XXXXXX", fifo[64];
  ck_assert(mkdtemp(dir) != NULL);
  snprintf(fifo, sizeof fifo, "%s/model.json", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  vd_train_options o = {.data_path = data, .spec_path = SPEC, .out_dir = dir, .max_rows = 2000};
  char version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  alarm(120);
  ck_assert(!vd_train_uplift(&o, version, &err));
  alarm(0);
  ck_assert_msg(strstr(err.message, "model.json is a FIFO (named pipe), not a regular file"), "%s",
                err.message);
  unlink(fifo);
  rmdir(dir);
}
END_TEST

START_TEST(verb_usage) {
  char buf[8192];
  FILE *out = fmemopen(buf, sizeof buf, "w");
  char a0[] = "train", help[] = "--help", kind[] = "triage", bogus[] = "--bogus";
  char *argv1[] = {a0, help, NULL};
  ck_assert_int_eq(vd_verb_train(2, argv1, out, out), 0);
  fflush(out);
  ck_assert(strstr(buf, "verdict train promotions --data"));
  rewind(out);
  char *argv2[] = {a0, NULL};
  ck_assert_int_eq(vd_verb_train(1, argv2, out, out), 2);
  char *argv3[] = {a0, kind, NULL};
  ck_assert_int_eq(vd_verb_train(2, argv3, out, out), 2);
  char *argv4[] = {a0, bogus, NULL};
  ck_assert_int_eq(vd_verb_train(2, argv4, out, out), 2);
  char promotions[] = "promotions";
  char *argv5[] = {a0, promotions, NULL};
  ck_assert_int_eq(vd_verb_train(2, argv5, out, out), 2); /* --data etc. missing */
  fclose(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("models/train");
  TCase *tc = tcase_create("train");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, training_is_deterministic_and_writes_a_loadable_bundle);
  tcase_add_test(tc, the_shipped_bundle_is_reproduced_byte_for_byte);
  tcase_add_test(tc, spec_errors_name_file_line_and_column);
  tcase_add_test(tc, a_fifo_in_the_out_folder_is_refused);
  tcase_add_test(tc, verb_usage);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
