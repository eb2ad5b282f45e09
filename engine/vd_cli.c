#include "vd_cli.h"

#include <string.h>

#include "vd_cli_verbs.h"

#ifndef VERDICT_VERSION
#define VERDICT_VERSION "0.1.0"
#endif

static int verb_version(int argc, char **argv, FILE *out, FILE *err);
static int verb_help(int argc, char **argv, FILE *out, FILE *err);

/* The verb table: one line per verb. Modules provide the functions (vd_cli_verbs.h). */
static const vd_verb verbs[] = {
    {"help", "Show help for verdict or for one verb: verdict help VERB", verb_help},
    {"version", "Print the version", verb_version},
    {"expr", "Evaluate one CEL expression: verdict expr EXPR [--vars JSON]", vd_verb_expr},
    {"rules", "Check rule files and run their tests: verdict rules check|test FILE...",
     vd_verb_rules},
    {"train", "Train a model bundle: verdict train promotions --data CSV --spec YAML --out DIR",
     vd_verb_train},
    {"models", "Re-stamp a model bundle after editing its manifest: verdict models rehash DIR",
     vd_verb_models},
    {"serve", "Serve the scoring API: verdict serve --config FILE", vd_verb_serve},
    {"score", "Batch-score a CSV or JSON Lines file: verdict score --deployment DIR --in FILE",
     vd_verb_score},
    {"llm", "Run an LLM job, show a job, read the cost ledger: verdict llm run|job|costs",
     vd_verb_llm},
    {"prompts", "Versioned prompts: verdict prompts list|show|diff|activate|rollback|stats",
     vd_verb_prompts},
    {"eval", "Golden-set eval of a prompt with a regression gate: verdict eval --task T ...",
     vd_verb_eval},
    {"explain", "Explain a stored decision: verdict explain ID [--format text|html|json]",
     vd_verb_explain},
    {"replay", "Re-run stored decisions on their versions: verdict replay ID | --since T",
     vd_verb_replay},
    {"shadow", "What-if: re-decide logged traffic with new rules: verdict shadow --deployment DIR",
     vd_verb_shadow},
};

static const size_t verb_count = sizeof verbs / sizeof verbs[0];

static const vd_verb *find_verb(const char *name) {
  for (size_t i = 0; i < verb_count; i++)
    if (strcmp(verbs[i].name, name) == 0) return &verbs[i];
  return NULL;
}

static void print_usage(FILE *f) {
  fprintf(f,
          "verdict — a hybrid decision engine: deterministic rules first, XGBoost models second, "
          "a trace for every decision.\n\n"
          "usage: verdict VERB [ARGS...]\n"
          "       verdict --help | --version\n"
          "       verdict help VERB\n\n"
          "verbs:\n");
  for (size_t i = 0; i < verb_count; i++)
    fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
  fprintf(f, "\nEvery verb takes --help.\n");
}

static int verb_version(int argc, char **argv, FILE *out, FILE *err) {
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    fprintf(out, "usage: verdict version\n\nPrints verdict's version.\n");
    return 0;
  }
  if (argc > 1) {
    fprintf(err, "verdict version: takes no arguments\n");
    return 2;
  }
  fprintf(out, "verdict %s\n", VERDICT_VERSION);
  return 0;
}

static int verb_help(int argc, char **argv, FILE *out, FILE *err) {
  if (argc < 2) {
    print_usage(out);
    return 0;
  }
  const vd_verb *verb = find_verb(argv[1]);
  if (!verb) {
    fprintf(err, "verdict: unknown verb '%s'\n\n", argv[1]);
    print_usage(err);
    return 2;
  }
  if (verb->run == verb_help) {
    print_usage(out);
    return 0;
  }
  char help_flag[] = "--help";
  char *help_argv[] = {argv[1], help_flag, NULL};
  return verb->run(2, help_argv, out, err);
}

int vd_cli_main(int argc, char **argv, FILE *out, FILE *err) {
  if (argc < 2) {
    print_usage(err);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    print_usage(out);
    return 0;
  }
  if (strcmp(name, "--version") == 0) return verb_version(1, argv + 1, out, err);
  const vd_verb *verb = find_verb(name);
  if (!verb) {
    fprintf(err, "verdict: unknown verb '%s' (see 'verdict --help')\n", name);
    return 2;
  }
  return verb->run(argc - 1, argv + 1, out, err);
}
