/* The CLI dispatch: verbs are found, unknown verbs are refused with exit 2 and a message. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "vd_cli.h"
#include "vd_test.h"

typedef struct captured {
  int code;
  char *out;
  char *err;
} captured;

static captured run_cli(int argc, char **argv) {
  captured c = {0};
  size_t out_len = 0, err_len = 0;
  FILE *out = open_memstream(&c.out, &out_len);
  FILE *err = open_memstream(&c.err, &err_len);
  c.code = vd_cli_main(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return c;
}

static void captured_free(captured *c) {
  free(c->out);
  free(c->err);
}

START_TEST(unknown_verb_exits_2_with_message) {
  char *argv[] = {"verdict", "frobnicate", NULL};
  captured c = run_cli(2, argv);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "unknown verb 'frobnicate'"));
  ck_assert_str_eq(c.out, "");
  captured_free(&c);
}
END_TEST

START_TEST(no_verb_prints_usage_and_exits_2) {
  char *argv[] = {"verdict", NULL};
  captured c = run_cli(1, argv);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "usage: verdict VERB"));
  captured_free(&c);
}
END_TEST

START_TEST(help_lists_the_verbs) {
  char *argv[] = {"verdict", "--help", NULL};
  captured c = run_cli(2, argv);
  ck_assert_int_eq(c.code, 0);
  ck_assert_ptr_nonnull(strstr(c.out, "  version "));
  ck_assert_ptr_nonnull(strstr(c.out, "  help "));
  captured_free(&c);
}
END_TEST

START_TEST(version_prints_the_version) {
  char *argv[] = {"verdict", "--version", NULL};
  captured c = run_cli(2, argv);
  ck_assert_int_eq(c.code, 0);
  ck_assert_int_eq(strncmp(c.out, "verdict ", 8), 0);
  captured_free(&c);
}
END_TEST

START_TEST(help_for_an_unknown_verb_exits_2) {
  char *argv[] = {"verdict", "help", "nosuch", NULL};
  captured c = run_cli(3, argv);
  ck_assert_int_eq(c.code, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "unknown verb 'nosuch'"));
  captured_free(&c);
}
END_TEST

START_TEST(help_for_a_known_verb_succeeds) {
  char *argv[] = {"verdict", "help", "version", NULL};
  captured c = run_cli(3, argv);
  ck_assert_int_eq(c.code, 0);
  captured_free(&c);
}
END_TEST

/* The installed executable behaves the same as the in-process dispatch. */
/* Every verb answers --help and a bad option alike (one helper, vd_args_verb): the help on
 * standard output, starting with its usage and ending with one newline; an unknown option exits
 * 2 naming the verb and where its help is. */
START_TEST(every_verb_answers_help_and_mistakes_alike) {
  static const char *const verbs[] = {"serve", "score", "explain", "replay", "shadow",
                                      "expr",  "train", "eval",    "llm",    "prompts"};
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    char *help[] = {"verdict", (char *)verbs[i], "--help", NULL};
    captured c = run_cli(3, help);
    ck_assert_msg(c.code == 0, "%s --help: exit %d", verbs[i], c.code);
    char usage[64];
    snprintf(usage, sizeof usage, "usage: verdict %s", verbs[i]);
    ck_assert_msg(strncmp(c.out, usage, strlen(usage)) == 0, "%s: %.80s", verbs[i], c.out);
    size_t n = strlen(c.out);
    ck_assert_msg(n > 2 && c.out[n - 1] == '\n' && c.out[n - 2] != '\n', "%s: ends %.20s", verbs[i],
                  c.out + (n > 20 ? n - 20 : 0));
    captured_free(&c);
    char *bad[] = {"verdict", (char *)verbs[i], "--no-such-option", NULL};
    c = run_cli(3, bad);
    ck_assert_msg(c.code == 2, "%s --no-such-option: exit %d", verbs[i], c.code);
    char line[160];
    snprintf(line, sizeof line,
             "verdict %s: unknown option --no-such-option (see 'verdict %s --help')\n", verbs[i],
             verbs[i]);
    ck_assert_str_eq(c.err, line);
    captured_free(&c);
  }
  char *triage[] = {"verdict", "train", "triage", "--no-such-option", NULL};
  captured t = run_cli(4, triage);
  ck_assert_int_eq(t.code, 2);
  ck_assert_str_eq(t.err,
                   "verdict train triage: unknown option --no-such-option (see 'verdict "
                   "train triage --help')\n");
  captured_free(&t);
  char *rules[] = {"verdict", "rules", "check", "--no-such-option", NULL};
  captured c = run_cli(4, rules);
  ck_assert_int_eq(c.code, 2);
  ck_assert_str_eq(c.err,
                   "verdict rules check: unknown option --no-such-option (see 'verdict "
                   "rules check --help')\n");
  captured_free(&c);
}
END_TEST

/* An empty option value ("--deployment=") is a usage mistake saying so, alike for every verb,
 * not a message with an empty name further on. */
START_TEST(an_empty_option_value_is_a_usage_mistake) {
  static const char *const verbs[] = {"score", "shadow"};
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    char *argv[] = {"verdict", (char *)verbs[i], "--deployment=", NULL};
    captured c = run_cli(3, argv);
    ck_assert_msg(c.code == 2, "%s --deployment=: exit %d", verbs[i], c.code);
    char line[160];
    snprintf(line, sizeof line,
             "verdict %s: option --deployment needs a value (got an empty one) (see 'verdict %s "
             "--help')\n",
             verbs[i], verbs[i]);
    ck_assert_str_eq(c.err, line);
    captured_free(&c);
  }
}
END_TEST

/* An empty positional ("verdict rules check ''" printed "cannot open : No such file") and an
 * option taken as a forgotten value ("score --deployment --in x.csv") are usage mistakes. */
START_TEST(an_empty_argument_or_an_option_as_a_value_is_a_usage_mistake) {
  char *rules[] = {"verdict", "rules", "check", "", NULL};
  captured c = run_cli(4, rules);
  ck_assert_int_eq(c.code, 2);
  ck_assert_str_eq(c.err,
                   "verdict rules check: argument 1 is empty (an empty argument names nothing) "
                   "(see 'verdict rules check --help')\n");
  captured_free(&c);
  char *score[] = {"verdict", "score", "--deployment", "--in", "x.csv", NULL};
  c = run_cli(5, score);
  ck_assert_int_eq(c.code, 2);
  ck_assert_str_eq(c.err,
                   "verdict score: option --deployment needs a value (got the option --in; a "
                   "value that starts with '--' is written --deployment=VALUE) (see 'verdict "
                   "score --help')\n");
  captured_free(&c);
}
END_TEST

START_TEST(executable_exits_2_on_unknown_verb) {
  char command[4096];
  snprintf(command, sizeof command, "'%s' frobnicate 2>/dev/null", VERDICT_EXE);
  int status = system(command);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 2);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("dispatch");
  tcase_add_test(tc, unknown_verb_exits_2_with_message);
  tcase_add_test(tc, no_verb_prints_usage_and_exits_2);
  tcase_add_test(tc, help_lists_the_verbs);
  tcase_add_test(tc, version_prints_the_version);
  tcase_add_test(tc, help_for_an_unknown_verb_exits_2);
  tcase_add_test(tc, help_for_a_known_verb_succeeds);
  tcase_add_test(tc, executable_exits_2_on_unknown_verb);
  tcase_add_test(tc, every_verb_answers_help_and_mistakes_alike);
  tcase_add_test(tc, an_empty_option_value_is_a_usage_mistake);
  tcase_add_test(tc, an_empty_argument_or_an_option_as_a_value_is_a_usage_mistake);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
