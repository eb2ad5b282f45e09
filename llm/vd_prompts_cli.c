/* `verdict prompts list|show|diff|activate|rollback|stats`: the prompt registry from the command
 * line. Activations go to the data folder's history; a running server picks them up on its next
 * reload (POST /v1/admin/reload or SIGHUP). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_eval.h"
#include "vd_llm_cli.h"
#include "vd_llm_store.h"
#include "vd_prompts.h"

static const vd_verb_help help = {
    "prompts",
    "usage: verdict prompts list [TASK]\n"
    "       verdict prompts show TASK VERSION\n"
    "       verdict prompts diff TASK VERSION_A VERSION_B\n"
    "       verdict prompts activate TASK VERSION --why TEXT [--who NAME]\n"
    "       verdict prompts rollback TASK --why TEXT [--who NAME]\n"
    "       verdict prompts stats TASK\n"
    "options: [--config FILE] [--data-dir DIR] [--prompts-dir DIR]\n\n"
    "TASK is extract, itinerary or classify; VERSION a file stem (v2) or an id (v2@<hex>).\n"
    "list      every version with its id, size in tokens (about 4 bytes per token) and\n"
    "          which one is active; versions that do not load show their error.\n"
    "activate  checks the version loads and records who/when/why in DATA_DIR/prompts/\n"
    "          history.jsonl; a server picks it up on reload.\n"
    "rollback  returns to the previously active version in one step.\n"
    "stats     per version: size in tokens and, from the cost ledger, jobs, calls, cost,\n"
    "          mean latency and the share of calls whose answer failed validation.\n"
    "--who defaults to $USER.\n",
    NULL};

static void print_error(const char *what, const vd_error *e, FILE *err) {
  char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
  vd_error_format(e, line, sizeof line);
  fprintf(err, "verdict prompts %s: %s\n", what, line);
}

static int list(const vd_llm_config *cfg, const char *task_name, FILE *out, FILE *err) {
  int status = 0;
  for (int t = 0; t < VD_LLM_TASK_COUNT; t++) {
    const char *name = vd_llm_task_name((vd_llm_task)t);
    if (task_name && strcmp(task_name, name) != 0) continue;
    vd_error e = {0};
    char active[VD_PROMPT_ID_SIZE];
    if (!vd_prompts_active(cfg->data_dir, (vd_llm_task)t, active, &e) && e.message[0]) {
      print_error("list", &e, err);
      return 1;
    }
    const char *current = active[0] ? active : cfg->tasks[t].prompt_version;
    json_t *versions = vd_prompts_list(cfg->prompts_dir, (vd_llm_task)t, &e);
    if (!versions) {
      print_error("list", &e, err);
      status = 1;
      continue;
    }
    fprintf(out, "%s (active: %s%s)\n", name, current, active[0] ? "" : ", from the config");
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v) {
      const char *id = json_string_value(json_object_get(v, "id"));
      const char *version = json_string_value(json_object_get(v, "version"));
      bool is_active = id && (strcmp(id, current) == 0 || strcmp(version, current) == 0);
      if (json_object_get(v, "error"))
        fprintf(out, "    %-10s  DOES NOT LOAD: %s\n", version,
                json_string_value(json_object_get(v, "error")));
      else
        fprintf(out, "  %s %-22s  %5lld tokens  tier %s  max_tokens %lld\n", is_active ? "*" : " ",
                id, (long long)json_integer_value(json_object_get(v, "tokens")),
                json_string_value(json_object_get(v, "tier")),
                (long long)json_integer_value(json_object_get(v, "max_tokens")));
    }
    json_decref(versions);
  }
  return status;
}

static int show(const vd_llm_config *cfg, vd_llm_task task, const char *version, FILE *out,
                FILE *err) {
  vd_error e;
  vd_prompt *p = vd_prompt_open(cfg->prompts_dir, task, version, &e);
  if (!p) {
    print_error("show", &e, err);
    return 1;
  }
  fprintf(out, "id: %s\nsha256: %s\ntokens: %zu (approximate: bytes / 4)\n\n%s", vd_prompt_id(p),
          vd_prompt_sha256(p), vd_prompt_token_estimate(p), vd_prompt_text(p));
  vd_prompt_free(p);
  return 0;
}

/* Lines of text (pointers into it, NUL-terminated in place). */
static char **split_lines(char *text, size_t *count) {
  size_t cap = 16, n = 0;
  char **lines = malloc(cap * sizeof *lines);
  for (char *s = text; lines && *s;) {
    if (n == cap) {
      char **grown = realloc(lines, (cap *= 2) * sizeof *lines);
      if (!grown) break;
      lines = grown;
    }
    lines[n++] = s;
    char *nl = strchr(s, '\n');
    if (!nl) break;
    *nl = '\0';
    s = nl + 1;
  }
  *count = n;
  return lines;
}

/* A line diff (longest common subsequence): "-" lines only in A, "+" only in B. */
static int diff(const vd_llm_config *cfg, vd_llm_task task, const char *va, const char *vb,
                FILE *out, FILE *err) {
  vd_error e;
  vd_prompt *a = vd_prompt_open(cfg->prompts_dir, task, va, &e);
  vd_prompt *b = a ? vd_prompt_open(cfg->prompts_dir, task, vb, &e) : NULL;
  if (!a || !b) {
    print_error("diff", &e, err);
    vd_prompt_free(a);
    return 1;
  }
  char *ta = strdup(vd_prompt_text(a)), *tb = strdup(vd_prompt_text(b));
  size_t na = 0, nb = 0;
  char **la = split_lines(ta, &na), **lb = split_lines(tb, &nb);
  size_t *lcs = calloc((na + 1) * (nb + 1), sizeof *lcs);
  int status = 0;
  if (!la || !lb || !lcs || na > 20000 || nb > 20000) {
    fprintf(err, "verdict prompts diff: the files are too large to compare\n");
    status = 1;
  } else {
    for (size_t i = na; i-- > 0;)
      for (size_t j = nb; j-- > 0;)
        lcs[i * (nb + 1) + j] = strcmp(la[i], lb[j]) == 0
                                    ? lcs[(i + 1) * (nb + 1) + j + 1] + 1
                                    : (lcs[(i + 1) * (nb + 1) + j] > lcs[i * (nb + 1) + j + 1]
                                           ? lcs[(i + 1) * (nb + 1) + j]
                                           : lcs[i * (nb + 1) + j + 1]);
    fprintf(out, "--- %s\n+++ %s\n", vd_prompt_id(a), vd_prompt_id(b));
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
      if (i < na && j < nb && strcmp(la[i], lb[j]) == 0) {
        fprintf(out, "  %s\n", la[i++]);
        j++;
      } else if (i < na && (j == nb || lcs[(i + 1) * (nb + 1) + j] >= lcs[i * (nb + 1) + j + 1])) {
        fprintf(out, "- %s\n", la[i++]);
      } else {
        fprintf(out, "+ %s\n", lb[j++]);
      }
    }
  }
  free(lcs);
  free(la);
  free(lb);
  free(ta);
  free(tb);
  vd_prompt_free(a);
  vd_prompt_free(b);
  return status;
}

static int stats(const vd_llm_config *cfg, vd_llm_task task, FILE *out, FILE *err) {
  vd_error e;
  json_t *versions = vd_prompts_list(cfg->prompts_dir, task, &e);
  if (!versions) {
    print_error("stats", &e, err);
    return 1;
  }
  vd_buf path = {0};
  vd_buf_printf(&path, "%s/llm.sqlite", cfg->data_dir);
  /* No store yet (no job has run with this data folder): every version has no calls. */
  bool exists = access(path.data, F_OK) == 0;
  vd_llm_store *store = exists ? vd_llm_store_open(path.data, false, &e) : NULL;
  json_t *rows = !exists ? json_array()
                 : store ? vd_llm_store_prompt_stats(store, vd_llm_task_name(task), &e)
                         : NULL;
  vd_llm_store_close(store);
  vd_buf_free(&path);
  if (!rows) {
    print_error("stats", &e, err);
    json_decref(versions);
    return 1;
  }
  fprintf(out,
          "| prompt | tokens | jobs | calls | cost USD | USD/job | mean latency ms | "
          "validation failures |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
  /* Every version on disk, then ids in the ledger no file has any more (edited or removed). */
  json_t *seen = json_object();
  size_t i;
  json_t *v;
  json_array_foreach(versions, i, v) {
    const char *id = json_string_value(json_object_get(v, "id"));
    if (!id) continue;
    const json_t *row = NULL;
    size_t k;
    json_t *r;
    json_array_foreach(rows, k, r) {
      if (strcmp(json_string_value(json_object_get(r, "prompt_version")), id) == 0) row = r;
    }
    json_object_set_new(seen, id, json_true());
    long long jobs = row ? (long long)json_integer_value(json_object_get(row, "jobs")) : 0;
    long long with_calls =
        row ? (long long)json_integer_value(json_object_get(row, "jobs_with_calls")) : 0;
    long long invalid =
        row ? (long long)json_integer_value(json_object_get(row, "validation_failures")) : 0;
    double cost = row ? json_number_value(json_object_get(row, "cost_usd")) : 0;
    fprintf(out, "| %s | %lld | %lld | %lld | %.6f | %.6f | %.1f | %lld of %lld (%.1f%%) |\n", id,
            (long long)json_integer_value(json_object_get(v, "tokens")), jobs,
            row ? (long long)json_integer_value(json_object_get(row, "calls")) : 0, cost,
            jobs ? cost / (double)jobs : 0.0,
            row ? json_number_value(json_object_get(row, "mean_latency_ms")) : 0.0, invalid,
            with_calls, with_calls ? 100.0 * (double)invalid / (double)with_calls : 0.0);
  }
  json_array_foreach(rows, i, v) {
    const char *id = json_string_value(json_object_get(v, "prompt_version"));
    if (json_object_get(seen, id)) continue;
    long long jobs = (long long)json_integer_value(json_object_get(v, "jobs"));
    long long with_calls = (long long)json_integer_value(json_object_get(v, "jobs_with_calls"));
    long long invalid = (long long)json_integer_value(json_object_get(v, "validation_failures"));
    double cost = json_number_value(json_object_get(v, "cost_usd"));
    fprintf(
        out, "| %s (no file) | - | %lld | %lld | %.6f | %.6f | %.1f | %lld of %lld (%.1f%%) |\n",
        id, jobs, (long long)json_integer_value(json_object_get(v, "calls")), cost,
        jobs ? cost / (double)jobs : 0.0, json_number_value(json_object_get(v, "mean_latency_ms")),
        invalid, with_calls, with_calls ? 100.0 * (double)invalid / (double)with_calls : 0.0);
  }
  json_decref(seen);
  json_decref(rows);
  json_decref(versions);
  return 0;
}

int vd_verb_prompts(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"config", true, NULL, NULL},      {"data-dir", true, NULL, NULL},
      {"prompts-dir", true, NULL, NULL}, {"who", true, NULL, NULL},
      {"why", true, NULL, NULL},
  };
  size_t n = sizeof options / sizeof *options, count = 0;
  const char *pos[4] = {0};
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, pos, 4, &count, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  static const struct {
    const char *name;
    size_t args; /* positionals after the subcommand */
  } commands[] = {{"list", 0},     {"show", 2},     {"diff", 3},
                  {"activate", 2}, {"rollback", 1}, {"stats", 1}};
  size_t c = 0;
  while (count && c < sizeof commands / sizeof *commands && strcmp(pos[0], commands[c].name) != 0)
    c++;
  if (!count || c == sizeof commands / sizeof *commands ||
      (count - 1 != commands[c].args && !(c == 0 && count == 2))) {
    return vd_args_usage_error(
        "prompts", err,
        "expected list, show, diff, activate, rollback or stats with their arguments");
  }
  vd_llm_task task = VD_LLM_TASK_EXTRACT;
  if (count > 1 && !vd_llm_task_parse(pos[1], &task)) {
    fprintf(err, "verdict prompts: unknown task \"%s\" (expected extract, itinerary, classify)\n",
            pos[1]);
    return 2;
  }
  vd_llm_config cfg;
  if (!vd_llm_config_load_file(&cfg, vd_args_get(options, n, "config"),
                               vd_args_get(options, n, "data-dir"), err))
    return 2;
  const char *dir = vd_args_get(options, n, "prompts-dir");
  if (dir) snprintf(cfg.prompts_dir, sizeof cfg.prompts_dir, "%s", dir);
  const char *who =
      vd_args_get(options, n, "who") ? vd_args_get(options, n, "who") : getenv("USER");
  const char *why = vd_args_get(options, n, "why");
  switch (c) {
    case 0:
      return list(&cfg, count == 2 ? pos[1] : NULL, out, err);
    case 1:
      return show(&cfg, task, pos[2], out, err);
    case 2:
      return diff(&cfg, task, pos[2], pos[3], out, err);
    case 3:
      if (!vd_prompts_activate(cfg.data_dir, cfg.prompts_dir, task, pos[2],
                               cfg.tasks[task].prompt_version, who, why, &e)) {
        print_error("activate", &e, err);
        return 1;
      }
      fprintf(out, "%s: %s is now active (reload the server to serve it)\n", pos[1], pos[2]);
      return 0;
    case 4: {
      char restored[VD_PROMPT_ID_SIZE];
      if (!vd_prompts_rollback(cfg.data_dir, cfg.prompts_dir, task, who, why, restored, &e)) {
        print_error("rollback", &e, err);
        return 1;
      }
      fprintf(out, "%s: rolled back to %s (reload the server to serve it)\n", pos[1], restored);
      return 0;
    }
    default:
      return stats(&cfg, task, out, err);
  }
}
