/* vd_cli: the `verdict` command line. Dispatches `verdict VERB ...` to the verb's function.
 *
 * Every verb has the signature of vd_verb_fn: it gets argv with argv[0] being the verb itself,
 * writes results to out and diagnostics to err, and returns the process exit code
 * (0 success, 1 a failed check or test, 2 bad usage or bad input). */
#ifndef VD_CLI_H
#define VD_CLI_H

#include <stdio.h>

typedef int (*vd_verb_fn)(int argc, char **argv, FILE *out, FILE *err);

typedef struct vd_verb {
  const char *name;
  const char *summary; /* one line for `verdict --help` */
  vd_verb_fn run;
} vd_verb;

/* Runs the whole command line (argv[0] is the program name). */
int vd_cli_main(int argc, char **argv, FILE *out, FILE *err);

#endif
