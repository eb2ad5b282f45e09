/* vd_config (the serve config file), vd_auth (keys and roles) and vd_metrics (Prometheus text). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_auth.h"
#include "vd_config.h"
#include "vd_metrics.h"
#include "vd_test.h"

static const char base[] =
    "listen: 127.0.0.1:9090\n"
    "data_dir: var\n"
    "deployments: [promotions]\n";

static vd_config *load(const char *text, vd_error *err) {
  return vd_config_load_string(text, "test.yaml", "/etc/verdict", err);
}

START_TEST(loads_the_example_config) {
  vd_error err = {0};
  vd_config *c = vd_config_load(VERDICT_SOURCE_DIR "/examples/verdict.yaml", &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_str_eq(c->listen_host, "127.0.0.1");
  ck_assert_int_eq(c->listen_port, 8080);
  ck_assert_str_eq(c->data_dir, VERDICT_SOURCE_DIR "/examples/../data");
  ck_assert_int_eq(c->deployment_count, 2);
  ck_assert_str_eq(c->deployments[0], VERDICT_SOURCE_DIR "/examples/promotions");
  ck_assert_str_eq(c->deployments[1], VERDICT_SOURCE_DIR "/examples/triage");
  /* the llm: section is kept for the LLM layer, its paths resolved against the file's folder */
  ck_assert_ptr_nonnull(c->llm);
  ck_assert_str_eq(json_string_value(json_object_get(c->llm, "prompts_dir")),
                   VERDICT_SOURCE_DIR "/examples/prompts");
  ck_assert_str_eq(json_string_value(json_object_get(c->llm, "gazetteer")),
                   VERDICT_SOURCE_DIR "/examples/triage/gazetteer.tsv");
  ck_assert_int_eq(c->key_count, 3);
  ck_assert_str_eq(c->keys[0].name, "demo-score");
  ck_assert_uint_eq(c->keys[0].roles, VD_ROLE_SCORE);
  ck_assert_uint_eq(c->keys[1].roles, VD_ROLE_COMPLIANCE);
  ck_assert_uint_eq(c->keys[2].roles, VD_ROLE_ADMIN);
  char hash[VD_SHA256_HEX_SIZE];
  vd_sha256_hex("demo-score", 10, hash);
  ck_assert_str_eq(c->keys[0].sha256, hash);
  ck_assert_uint_eq(c->limits.max_body_bytes, 65536);
  ck_assert_int_eq(c->decision_log.durability, VD_DURABILITY_NORMAL);
  ck_assert_int_eq(c->decision_log.overload, VD_LOG_OVERLOAD_REJECT);
  vd_config_free(c);
}
END_TEST

START_TEST(defaults_and_relative_paths) {
  vd_error err = {0};
  vd_config *c = load(base, &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_str_eq(c->data_dir, "/etc/verdict/var");
  ck_assert_str_eq(c->deployments[0], "/etc/verdict/promotions");
  ck_assert_int_eq(c->listen_port, 9090);
  ck_assert_uint_eq(c->limits.threads, 0);
  ck_assert_uint_eq(c->limits.time_slice_us, 100);
  ck_assert_uint_eq(c->limits.max_header_bytes, 16384);
  ck_assert_uint_eq(c->limits.connection_timeout_s, 30);
  ck_assert_ptr_null(c->decision_log.path);
  ck_assert_uint_eq(c->decision_log.queue_capacity, 4096);
  ck_assert_uint_eq(c->decision_log.retention_interval_ms, 3600000); /* hourly */
  vd_config_free(c);
}
END_TEST

START_TEST(every_setting_is_read) {
  char text[2048];
  snprintf(text, sizeof text,
           "%smask_fields: [subject.id]\nmask_key_file: /secrets/mask.key\n"
           "limits: {threads: 3, max_body_bytes: 1024, max_header_bytes: 2048,"
           " connection_timeout_s: 5, request_timeout_ms: 700, shutdown_timeout_ms: 900,"
           " max_connections: 10, max_results: 1, time_slice_us: 0}\n"
           "decision_log: {path: log/d.db, durability: fsync, overload: wait, queue_capacity: 7,"
           " max_batch: 3, max_wait_ms: 9, retention_days: 30, max_bytes: 100000,"
           " busy_timeout_ms: 11, retention_interval_ms: 60000}\n",
           base);
  vd_error err = {0};
  vd_config *c = load(text, &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_int_eq(c->mask_field_count, 1);
  ck_assert_str_eq(c->mask_fields[0], "subject.id");
  ck_assert_str_eq(c->mask_key_file, "/secrets/mask.key");
  ck_assert_uint_eq(c->limits.threads, 3);
  ck_assert_uint_eq(c->limits.max_body_bytes, 1024);
  ck_assert_uint_eq(c->limits.max_header_bytes, 2048);
  ck_assert_uint_eq(c->limits.request_timeout_ms, 700);
  ck_assert_uint_eq(c->limits.max_results, 1);
  ck_assert_uint_eq(c->limits.time_slice_us, 0);
  ck_assert_str_eq(c->decision_log.path, "/etc/verdict/log/d.db");
  ck_assert_int_eq(c->decision_log.durability, VD_DURABILITY_FSYNC);
  ck_assert_int_eq(c->decision_log.overload, VD_LOG_OVERLOAD_WAIT);
  ck_assert_uint_eq(c->decision_log.queue_capacity, 7);
  ck_assert_uint_eq(c->decision_log.retention_days, 30);
  ck_assert_uint_eq(c->decision_log.retention_interval_ms, 60000);
  ck_assert_uint_eq(c->decision_log.max_bytes, 100000);
  vd_config_free(c);
}
END_TEST

/* Each mistake: the text after `base`, the line:col expected and a piece of the message. */
typedef struct mistake {
  const char *text;
  int line, column;
  const char *says;
} mistake;

static const mistake mistakes[] = {
    {"limits: {max_body_byte: 10}\n", 4, 10,
     "unknown key 'max_body_byte' in limits (did you mean 'max_body_bytes'?"},
    {"listn: 1\n", 4, 1, "unknown key 'listn' in the config (did you mean 'listen'?"},
    {"decision_log: {durabilty: fsync}\n", 4, 16, "(did you mean 'durability'?"},
    {"frobnicate: 1\n", 4, 1, "unknown key 'frobnicate' in the config (expected one of: "},
    {"keys:\n  - {name: a, sha256: abc, roles: [score]}\n", 5, 23, "64 hex digits"},
    {"keys:\n  - name: a\n    sha256: "
     "cc6594d5f799f85b0b8f016df22a918956c40f456836aa95cd6765bd67a4eefb\n    roles: [scorer]\n",
     7, 13, "unknown role"},
    {"decision_log: {durability: sometimes}\n", 4, 28, "durability must be 'normal'"},
    {"limits: {threads: -1}\n", 4, 19, "must be an integer in [0, 1024]"},
    {"limits: {max_body_bytes: 10}\n", 4, 26, "[64, "},
    {"limits: {time_slice_us: 200000}\n", 4, 25, "must be an integer in [0, 100000]"},
    {"decision_log: {retention_interval_ms: 5}\n", 4, 39,
     "must be an integer in [1000, 604800000]"},
};

START_TEST(mistakes_name_file_line_and_column) {
  const mistake *m = &mistakes[_i];
  char text[1024];
  snprintf(text, sizeof text, "%s%s", base, m->text);
  vd_error err = {0};
  vd_config *c = load(text, &err);
  ck_assert_ptr_null(c);
  ck_assert_str_eq(err.file, "test.yaml");
  ck_assert_msg(err.line == m->line && err.column == m->column, "%s: at %d:%d, expected %d:%d",
                err.message, err.line, err.column, m->line, m->column);
  ck_assert_msg(strstr(err.message, m->says), "'%s' does not say '%s'", err.message, m->says);
}
END_TEST

START_TEST(llm_section_is_kept_with_resolved_paths) {
  vd_error err = {0};
  vd_config *c = load(base, &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_ptr_null(c->llm); /* no llm: section, no LLM layer */
  ck_assert_str_eq(c->base_dir, "/etc/verdict");
  vd_config_free(c);
  char text[512];
  snprintf(text, sizeof text,
           "%sllm:\n  data_dir: llm-data\n  gazetteer: /abs/g.tsv\n  "
           "queue_capacity: 8\n",
           base);
  c = load(text, &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_str_eq(json_string_value(json_object_get(c->llm, "data_dir")), "/etc/verdict/llm-data");
  ck_assert_str_eq(json_string_value(json_object_get(c->llm, "gazetteer")), "/abs/g.tsv");
  ck_assert_int_eq(json_integer_value(json_object_get(c->llm, "queue_capacity")), 8);
  vd_config_free(c);
  snprintf(text, sizeof text, "%sllm: 3\n", base);
  c = load(text, &err);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(err.line, 4);
  ck_assert_msg(strstr(err.message, "'llm' must be a mapping"), "%s", err.message);
}
END_TEST

START_TEST(duplicate_keys_and_missing_sections) {
  vd_error err = {0};
  ck_assert_ptr_null(load("listen: 127.0.0.1:1\ndeployments: [a]\n", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "data_dir"));
  ck_assert_ptr_null(load("data_dir: x\n", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "deployments"));
  const char *same_secret =
      "keys:\n"
      "  - {name: a, sha256: cc6594d5f799f85b0b8f016df22a918956c40f456836aa95cd6765bd67a4eefb,"
      " roles: [score]}\n"
      "  - {name: b, sha256: CC6594D5F799F85B0B8F016DF22A918956C40F456836AA95CD6765BD67A4EEFB,"
      " roles: [admin]}\n";
  char text[1024];
  snprintf(text, sizeof text, "%s%s", base, same_secret);
  ck_assert_ptr_null(load(text, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "same secret"));
}
END_TEST

START_TEST(listen_addresses) {
  char *host = NULL;
  int port = 0;
  vd_error err = {0};
  ck_assert(vd_config_parse_listen("[::1]:8443", &host, &port, &err));
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 8443);
  free(host);
  ck_assert(vd_config_parse_listen(":9000", &host, &port, &err));
  ck_assert_str_eq(host, "0.0.0.0");
  free(host);
  ck_assert(!vd_config_parse_listen("localhost", &host, &port, &err));
  ck_assert(!vd_config_parse_listen("localhost:http", &host, &port, &err));
  ck_assert(!vd_config_parse_listen("::1:80", &host, &port, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "brackets"));
  ck_assert(!vd_config_parse_listen("h:70000", &host, &port, &err));
}
END_TEST

START_TEST(command_line_overrides) {
  vd_error err = {0};
  vd_config *c = load(base, &err);
  ck_assert(vd_config_override(c, "0.0.0.0:0", "/tmp/elsewhere", &err));
  ck_assert_str_eq(c->listen_host, "0.0.0.0");
  ck_assert_int_eq(c->listen_port, 0);
  ck_assert_str_eq(c->data_dir, "/tmp/elsewhere");
  ck_assert(!vd_config_override(c, "nonsense", NULL, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "--listen"));
  vd_config_free(c);
}
END_TEST

/* `verdict serve --config F --data-dir D`: the command line's data folder stands in for the
 * file's, so a config without data_dir loads; without either it is refused naming both. */
START_TEST(data_dir_on_the_command_line_satisfies_the_config) {
  char path[] = "/tmp/vd-config-XXXXXX.yaml";
  int fd = mkstemps(path, 5);
  ck_assert_int_ge(fd, 0);
  static const char text[] = "deployments: [promotions]\n";
  ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  vd_error err = {0};
  ck_assert_ptr_null(vd_config_load(path, &err));
  ck_assert_msg(strstr(err.message,
                       "the config needs 'data_dir' (or --data-dir DIR on the "
                       "command line)"),
                "%s", err.message);
  vd_config *c = vd_config_load_overridden(
      path, &(vd_config_overrides){.data_dir = "/tmp/from-the-command-line"}, &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_str_eq(c->data_dir, "/tmp/from-the-command-line");
  vd_config_free(c);
  ck_assert_ptr_null(vd_config_load_overridden(
      path, &(vd_config_overrides){.listen = "nonsense", .data_dir = "/tmp/x"}, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "--listen"));
  unlink(path);
}
END_TEST

/* ---- vd_auth ------------------------------------------------------------------------------- */

static vd_config_key keys[2];

static void make_keys(void) {
  keys[0] = (vd_config_key){.name = "scorer", .roles = VD_ROLE_SCORE};
  vd_sha256_hex("s3cret", 6, keys[0].sha256);
  keys[1] = (vd_config_key){.name = "auditor", .roles = VD_ROLE_COMPLIANCE | VD_ROLE_ADMIN};
  vd_sha256_hex("other", 5, keys[1].sha256);
}

START_TEST(bearer_keys_and_roles) {
  make_keys();
  const char *name = NULL;
  ck_assert_int_eq(vd_auth_check(keys, 2, NULL, VD_ROLE_SCORE, &name), VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Basic czNjcmV0", VD_ROLE_SCORE, &name), VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer ", VD_ROLE_SCORE, &name), VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cret extra", VD_ROLE_SCORE, &name),
                   VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cre", VD_ROLE_SCORE, &name), VD_AUTH_UNKNOWN);
  ck_assert_ptr_null(name);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cret", VD_ROLE_SCORE, &name), VD_AUTH_OK);
  ck_assert_str_eq(name, "scorer");
  ck_assert_int_eq(vd_auth_check(keys, 2, "bearer  s3cret", VD_ROLE_SCORE, &name), VD_AUTH_OK);
  /* RFC 9110 5.5: whitespace around a field value is not part of it. */
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cret ", VD_ROLE_SCORE, &name), VD_AUTH_OK);
  ck_assert_int_eq(vd_auth_check(keys, 2, " \tBearer s3cret\t \t", VD_ROLE_SCORE, &name),
                   VD_AUTH_OK);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cret \t extra", VD_ROLE_SCORE, &name),
                   VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer  \t ", VD_ROLE_SCORE, &name), VD_AUTH_MISSING);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer s3cret", VD_ROLE_ADMIN, &name),
                   VD_AUTH_FORBIDDEN);
  ck_assert_str_eq(name, "scorer");
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer other", VD_ROLE_ADMIN, &name), VD_AUTH_OK);
  ck_assert_int_eq(vd_auth_check(keys, 2, "Bearer other", VD_ROLE_COMPLIANCE, &name), VD_AUTH_OK);
  ck_assert_int_eq(vd_auth_check(keys, 0, "Bearer other", VD_ROLE_SCORE, &name), VD_AUTH_UNKNOWN);
}
END_TEST

/* ---- vd_metrics ---------------------------------------------------------------------------- */

START_TEST(metrics_render_counts_and_histograms) {
  vd_metrics *m = vd_metrics_new();
  vd_metrics_observe_request(m, VD_ENDPOINT_SCORE, 200, 80 * 1000);  /* 80 µs */
  vd_metrics_observe_request(m, VD_ENDPOINT_SCORE, 200, 700 * 1000); /* 0.7 ms */
  vd_metrics_observe_request(m, VD_ENDPOINT_SCORE, 400, 30 * 1000);  /* 30 µs */
  vd_metrics_observe_request(m, VD_ENDPOINT_OTHER, 599, 1000);       /* an odd status */
  vd_metrics_count(m, VD_FAMILY_DECISIONS, "offer", 2);
  vd_metrics_count(m, VD_FAMILY_DECISIONS, "deny", 1);
  vd_metrics_count(m, VD_FAMILY_RULES_FIRED, "quote\"rule", 1);
  vd_buf out = {0};
  vd_metrics_render(m, NULL, &out);
  const char *wanted[] = {
      "verdict_http_requests_total{endpoint=\"score\",status=\"200\"} 2\n",
      "verdict_http_requests_total{endpoint=\"score\",status=\"400\"} 1\n",
      "verdict_http_requests_total{endpoint=\"other\",status=\"other\"} 1\n",
      "verdict_http_request_duration_seconds_bucket{endpoint=\"score\",le=\"5e-05\"} 1\n",
      "verdict_http_request_duration_seconds_bucket{endpoint=\"score\",le=\"0.0001\"} 2\n",
      "verdict_http_request_duration_seconds_bucket{endpoint=\"score\",le=\"0.001\"} 3\n",
      "verdict_http_request_duration_seconds_bucket{endpoint=\"score\",le=\"+Inf\"} 3\n",
      "verdict_http_request_duration_seconds_count{endpoint=\"score\"} 3\n",
      "verdict_http_request_duration_seconds_sum{endpoint=\"score\"} 0.000810000\n",
      "verdict_decisions_total{action=\"offer\"} 2\n",
      "verdict_decisions_total{action=\"deny\"} 1\n",
      "verdict_rules_fired_total{rule=\"quote\\\"rule\"} 1\n",
      "# TYPE verdict_model_fallbacks_total counter\n",
  };
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
    ck_assert_msg(strstr(out.data, wanted[i]), "missing: %s", wanted[i]);
  ck_assert_ptr_null(strstr(out.data, "decision_log")); /* no log given */
  vd_buf_free(&out);

  vd_decision_log_stats stats = {.queue_depth = 3,
                                 .committed = 10,
                                 .healthy = true,
                                 .checkpoint_holds = 7,
                                 .batches = 8,
                                 .checkpoint_hold_seconds_max = 0.0015};
  stats.commit_latency[0] = 4;
  stats.commit_latency[VD_LOG_LATENCY_BUCKETS] = 1;
  vd_metrics_render(m, &stats, &out);
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_decision_log_queue_depth 3\n"));
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_decision_log_commit_seconds_count 5\n"));
  ck_assert_ptr_nonnull(
      strstr(out.data, "verdict_decision_log_commit_seconds_bucket{le=\"+Inf\"} 5\n"));
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_decision_log_checkpoint_holds_total 7\n"));
  ck_assert_ptr_nonnull(
      strstr(out.data, "verdict_decision_log_checkpoint_hold_seconds_max 0.001500000\n"));
  /* committed / batches: the decisions a group commit carries */
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_decision_log_batches_total 8\n"));
  vd_buf_free(&out);
  vd_metrics_free(m);
}
END_TEST

START_TEST(label_space_is_bounded) {
  vd_metrics *m = vd_metrics_new();
  for (int i = 0; i < VD_METRICS_MAX_LABELS + 10; i++) {
    char label[32];
    snprintf(label, sizeof label, "rule-%d", i);
    vd_metrics_count(m, VD_FAMILY_RULES_FIRED, label, 1);
  }
  vd_buf out = {0};
  vd_metrics_render(m, NULL, &out);
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_rules_fired_total{rule=\"rule-0\"} 1\n"));
  ck_assert_ptr_nonnull(strstr(out.data, "verdict_rules_fired_total{rule=\"other\"} 10\n"));
  ck_assert_ptr_null(strstr(out.data, "rule=\"rule-515\""));
  vd_buf_free(&out);
  vd_metrics_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_test(tc, loads_the_example_config);
  tcase_add_test(tc, llm_section_is_kept_with_resolved_paths);
  tcase_add_test(tc, defaults_and_relative_paths);
  tcase_add_test(tc, every_setting_is_read);
  tcase_add_loop_test(tc, mistakes_name_file_line_and_column, 0,
                      sizeof mistakes / sizeof mistakes[0]);
  tcase_add_test(tc, duplicate_keys_and_missing_sections);
  tcase_add_test(tc, listen_addresses);
  tcase_add_test(tc, command_line_overrides);
  tcase_add_test(tc, data_dir_on_the_command_line_satisfies_the_config);
  suite_add_tcase(s, tc);
  TCase *auth = tcase_create("auth");
  tcase_add_test(auth, bearer_keys_and_roles);
  suite_add_tcase(s, auth);
  TCase *metrics = tcase_create("metrics");
  tcase_add_test(metrics, metrics_render_counts_and_histograms);
  tcase_add_test(metrics, label_space_is_bounded);
  suite_add_tcase(s, metrics);
  return vd_test_run(s);
}
