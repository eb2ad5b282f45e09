/* vd_args: the command-line option parser every verb uses.
 *
 * A verb declares its options in a table; vd_args_parse fills the values and collects positional
 * arguments. Long options only ("--name VALUE", "--name=VALUE", "--flag"); "--" ends options.
 * Nothing is allocated: values point into argv, and positionals is an array the caller provides.
 */
#ifndef VD_ARGS_H
#define VD_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_option {
  const char *name;  /* without the leading "--" */
  bool takes_value;  /* false: a flag */
  const char *value; /* out: the value, or "1" for a flag that was given; NULL when absent */
  const char *help;  /* one line, for --help */
} vd_option;

/* Parses argv[first..argc). Unknown options, a missing value, or more than max_positionals
 * positionals are errors. "--help" is always accepted and sets *help_requested. */
bool vd_args_parse(int argc, char **argv, int first, vd_option *options, size_t option_count,
                   const char **positionals, size_t max_positionals, size_t *positional_count,
                   bool *help_requested, vd_error *err);

/* The option's value, or NULL when it was not given. */
const char *vd_args_get(const vd_option *options, size_t option_count, const char *name);

#endif
