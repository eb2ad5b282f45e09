/* vd_args: the command-line option parser every verb uses.
 *
 * A verb declares its options in a table; vd_args_parse fills the values and collects positional
 * arguments. Long options only ("--name VALUE", "--name=VALUE", "--flag"); "--" ends options.
 * Nothing is allocated: values point into argv, and positionals is an array the caller provides.
 * vd_args_verb is what a verb calls: the parse plus --help and usage mistakes, answered alike by
 * every verb.
 */
#ifndef VD_ARGS_H
#define VD_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"

typedef struct vd_option {
  const char *name;  /* without the leading "--" */
  bool takes_value;  /* false: a flag */
  const char *value; /* out: the value, or "1" for a flag that was given; NULL when absent */
  const char *help;  /* one line, for --help */
} vd_option;

/* Parses argv[first..argc). Unknown options, a missing or empty value ("--name=", "--name ''"),
 * a value given apart that is one of the verb's options ("--deployment --in x.csv": write
 * "--deployment=--in" for such a value), an empty positional, or more than max_positionals
 * positionals are errors. "--help" is always accepted and sets *help_requested. */
bool vd_args_parse(int argc, char **argv, int first, vd_option *options, size_t option_count,
                   const char **positionals, size_t max_positionals, size_t *positional_count,
                   bool *help_requested, vd_error *err);

/* The option's value, or NULL when it was not given. */
const char *vd_args_get(const vd_option *options, size_t option_count, const char *name);

/* A verb's --help: its usage lines and what it does, the options (those with a help line, one
 * each), then the epilogue (exit statuses; NULL for none). */
typedef struct vd_verb_help {
  const char *verb;     /* as typed, for messages: "replay", "rules check" */
  const char *text;     /* printed first */
  const char *epilogue; /* printed after the options */
} vd_verb_help;

enum { VD_ARGS_GO_ON = -1 };

/* The start every verb shares: vd_args_parse, then on "--help" the help on out (each part ends
 * with a newline, written with one or not) and 0; on a mistake vd_args_usage_error's line and 2;
 * otherwise VD_ARGS_GO_ON — the verb goes on with the values. */
int vd_args_verb(const vd_verb_help *help, int argc, char **argv, int first, vd_option *options,
                 size_t option_count, const char **positionals, size_t max_positionals,
                 size_t *positional_count, FILE *out, FILE *err);
/* Prints the help as vd_args_verb does for "--help". */
void vd_args_print_help(const vd_verb_help *help, const vd_option *options, size_t option_count,
                        FILE *out);
/* Prints "verdict VERB: MESSAGE (see 'verdict VERB --help')" on err and returns 2, the exit
 * status of a usage mistake. */
int vd_args_usage_error(const char *verb, FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
