#include "vd_args.h"

#include <stdarg.h>
#include <string.h>

static vd_option *find(vd_option *options, size_t count, const char *name, size_t name_len) {
  for (size_t i = 0; i < count; i++)
    if (strlen(options[i].name) == name_len && strncmp(options[i].name, name, name_len) == 0)
      return &options[i];
  return NULL;
}

/* True when text is "--NAME" or "--NAME=..." for an option of the table or --help. */
static bool names_option(vd_option *options, size_t count, const char *text) {
  if (strncmp(text, "--", 2) != 0) return false;
  const char *name = text + 2;
  const char *eq = strchr(name, '=');
  size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
  return (name_len == 4 && strncmp(name, "help", 4) == 0) ||
         (name_len && find(options, count, name, name_len) != NULL);
}

bool vd_args_parse(int argc, char **argv, int first, vd_option *options, size_t option_count,
                   const char **positionals, size_t max_positionals, size_t *positional_count,
                   bool *help_requested, vd_error *err) {
  *positional_count = 0;
  *help_requested = false;
  bool options_done = false;
  for (int i = first; i < argc; i++) {
    const char *arg = argv[i];
    if (!options_done && strcmp(arg, "--") == 0) {
      options_done = true;
      continue;
    }
    if (!options_done && strncmp(arg, "--", 2) == 0) {
      const char *name = arg + 2;
      const char *eq = strchr(name, '=');
      size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
      if (name_len == 4 && strncmp(name, "help", 4) == 0) {
        *help_requested = true;
        continue;
      }
      vd_option *opt = find(options, option_count, name, name_len);
      if (!opt) return vd_error_set(err, "unknown option --%.*s", (int)name_len, name);
      if (!opt->takes_value) {
        if (eq) return vd_error_set(err, "option --%s takes no value", opt->name);
        opt->value = "1";
      } else if (eq) {
        opt->value = eq + 1;
      } else if (i + 1 < argc) {
        opt->value = argv[++i];
        /* "--deployment --in x.csv": the value forgotten, the next option taken as the value */
        if (names_option(options, option_count, opt->value))
          return vd_error_set(err,
                              "option --%s needs a value (got the option %s; a value that "
                              "starts with '--' is written --%s=VALUE)",
                              opt->name, opt->value, opt->name);
      } else {
        return vd_error_set(err, "option --%s needs a value", opt->name);
      }
      /* "--deployment=" (or an empty "$VAR") names nothing: no verb has a use for an empty value,
       * and taking it on would fail later with an empty name in the message. */
      if (!*opt->value)
        return vd_error_set(err, "option --%s needs a value (got an empty one)", opt->name);
      continue;
    }
    /* "verdict rules check ''" (an unset "$FILE") names nothing, as an empty option value */
    if (!*arg)
      return vd_error_set(err, "argument %zu is empty (an empty argument names nothing)",
                          *positional_count + 1);
    if (*positional_count == max_positionals)
      return vd_error_set(err, "unexpected argument '%s'", arg);
    positionals[(*positional_count)++] = arg;
  }
  return true;
}

const char *vd_args_get(const vd_option *options, size_t option_count, const char *name) {
  for (size_t i = 0; i < option_count; i++)
    if (strcmp(options[i].name, name) == 0) return options[i].value;
  return NULL;
}

/* Writes text, then a newline unless it ends with one. */
static void put_line(FILE *f, const char *text) {
  size_t n = strlen(text);
  fputs(text, f);
  if (n == 0 || text[n - 1] != '\n') fputc('\n', f);
}

void vd_args_print_help(const vd_verb_help *help, const vd_option *options, size_t option_count,
                        FILE *out) {
  put_line(out, help->text);
  int width = 0;
  for (size_t i = 0; i < option_count; i++)
    if (options[i].help && (int)strlen(options[i].name) > width)
      width = (int)strlen(options[i].name);
  if (width) fputs("\noptions:\n", out);
  for (size_t i = 0; i < option_count; i++)
    if (options[i].help) fprintf(out, "  --%-*s  %s\n", width, options[i].name, options[i].help);
  if (help->epilogue) {
    fputc('\n', out);
    put_line(out, help->epilogue);
  }
}

int vd_args_usage_error(const char *verb, FILE *err, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  fprintf(err, "verdict %s: %s (see 'verdict %s --help')\n", verb, message, verb);
  return 2;
}

int vd_args_verb(const vd_verb_help *help, int argc, char **argv, int first, vd_option *options,
                 size_t option_count, const char **positionals, size_t max_positionals,
                 size_t *positional_count, FILE *out, FILE *err) {
  bool help_requested = false;
  vd_error e = {0};
  if (!vd_args_parse(argc, argv, first, options, option_count, positionals, max_positionals,
                     positional_count, &help_requested, &e))
    return vd_args_usage_error(help->verb, err, "%s", e.message);
  if (!help_requested) return VD_ARGS_GO_ON;
  vd_args_print_help(help, options, option_count, out);
  return 0;
}
