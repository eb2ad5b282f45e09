/* `verdict llm run|job|costs`: run one LLM job from the command line and watch it stream, look a
 * job up, or read the cost ledger — for operators checking a provider set-up. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_json_file.h"
#include "vd_llm.h"
#include "vd_llm_cli.h"
#include "vd_llm_store.h"
#include "vd_time.h"
#include "vd_yaml.h"

static const vd_verb_help help = {
    "llm",
    "usage: verdict llm run TASK --input JSON|@FILE [--config FILE] [--data-dir DIR]\n"
    "                         [--feature NAME] [--quiet]\n"
    "       verdict llm job ID [--config FILE] [--data-dir DIR]\n"
    "       verdict llm costs [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--config FILE]\n"
    "                         [--data-dir DIR]\n\n"
    "run    submits one job (TASK: extract, itinerary or classify), prints the answer text\n"
    "       as the provider streams it, then the job record as JSON. Exit 0 when the job has\n"
    "       a result (state succeeded or fallback), 1 when it failed. It also resumes any\n"
    "       unfinished job found in the data folder.\n"
    "job    prints a stored job record.\n"
    "costs  prints the cost ledger per day, task and feature (default: today).\n\n"
    "--config reads the `llm:` section of a verdict config file (relative paths in it are\n"
    "relative to the file's folder). Without it: the conventional ANTHROPIC_* / OPENAI_*\n"
    "environment variables and the shipped defaults, data folder ./data.\n",
    NULL};

/* Makes a path from the config file relative to the file's folder. False when it gets too long. */
static bool resolve(char *path, size_t size, const char *config_dir, FILE *err) {
  if (!path[0] || path[0] == '/') return true;
  vd_buf joined = {0};
  vd_buf_printf(&joined, "%s/%s", config_dir, path);
  bool fits = !joined.oom && joined.len < size;
  if (fits)
    memcpy(path, joined.data, joined.len + 1);
  else
    fprintf(err, "verdict llm: path %s/%s is too long\n", config_dir, path);
  vd_buf_free(&joined);
  return fits;
}

bool vd_llm_config_load_file(vd_llm_config *cfg, const char *config_path, const char *data_dir,
                             FILE *err) {
  vd_llm_config_defaults(cfg);
  if (config_path) {
    vd_error e;
    vd_yaml_doc *doc = vd_yaml_load_file(config_path, &e);
    if (!doc) {
      char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
      vd_error_format(&e, line, sizeof line);
      fprintf(err, "verdict llm: %s\n", line);
      return false;
    }
    const json_t *root = vd_yaml_root(doc);
    const json_t *section = json_object_get(root, "llm");
    bool ok = true;
    if (!section) {
      fprintf(err, "verdict llm: %s has no `llm:` section\n", config_path);
      ok = false;
    } else if (!vd_llm_config_from_json(cfg, section, &e)) {
      fprintf(err, "verdict llm: %s: %s\n", config_path, e.message);
      ok = false;
    }
    if (ok) {
      char copy[VD_LLM_PATH_MAX];
      snprintf(copy, sizeof copy, "%s", config_path);
      const char *dir = dirname(copy);
      ok = (!json_object_get(section, "data_dir") ||
            resolve(cfg->data_dir, sizeof cfg->data_dir, dir, err)) &&
           (!json_object_get(section, "prompts_dir") ||
            resolve(cfg->prompts_dir, sizeof cfg->prompts_dir, dir, err)) &&
           (!json_object_get(section, "catalogue") ||
            resolve(cfg->catalogue_path, sizeof cfg->catalogue_path, dir, err)) &&
           (!json_object_get(section, "gazetteer") ||
            resolve(cfg->gazetteer_path, sizeof cfg->gazetteer_path, dir, err));
    }
    vd_yaml_free(doc);
    if (!ok) return false;
  }
  if (data_dir) snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", data_dir);
  return true;
}

enum { INPUT_MAX_BYTES = 16 * 1024 * 1024 }; /* an --input @FILE */

static json_t *read_input(const char *arg, FILE *err) {
  if (arg[0] == '@') {
    vd_error e;
    json_t *input = vd_json_load_file(arg + 1, INPUT_MAX_BYTES, 0, &e);
    if (!input) {
      char message[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
      vd_error_format(&e, message, sizeof message);
      fprintf(err, "verdict llm: --input %s\n", message);
    }
    return input;
  }
  json_error_t jerr;
  json_t *input = json_loads(arg, 0, &jerr);
  if (!input)
    fprintf(err, "verdict llm: --input (argument):%d:%d: %s\n", jerr.line, jerr.column, jerr.text);
  return input;
}

static void print_json(FILE *out, const json_t *v) {
  char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  fprintf(out, "%s\n", text ? text : "null");
  free(text);
}

static int run(vd_llm_config *cfg, const char *task_name, const char *input_arg,
               const char *feature, bool quiet, FILE *out, FILE *err) {
  vd_llm_task task;
  if (!vd_llm_task_parse(task_name, &task)) {
    fprintf(err, "verdict llm run: unknown task \"%s\" (expected extract, itinerary or classify)\n",
            task_name);
    return 2;
  }
  json_t *input = read_input(input_arg, err);
  if (!input) return 2;
  vd_error e;
  vd_llm *llm = vd_llm_open(cfg, &e);
  if (!llm) {
    fprintf(err, "verdict llm: %s\n", e.message);
    json_decref(input);
    return 1;
  }
  char id[VD_LLM_JOB_ID_SIZE];
  vd_llm_submit_opts opts = {.feature = feature};
  vd_llm_submit_status st = vd_llm_submit(llm, task, input, &opts, id, &e);
  json_decref(input);
  if (st == VD_LLM_QUEUE_FULL || st == VD_LLM_REJECTED) {
    fprintf(err, "verdict llm run: %s%s%s\n", e.field[0] ? e.field : "", e.field[0] ? ": " : "",
            e.message);
    vd_llm_close(llm);
    return st == VD_LLM_REJECTED ? 2 : 1;
  }
  uint64_t cursor = 0;
  bool finished = false;
  while (!finished) {
    json_t *events = vd_llm_events(llm, id, &cursor, 1000, &finished, &e);
    if (!events) break;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
      const char *name = json_string_value(json_object_get(ev, "event"));
      const json_t *data = json_object_get(ev, "data");
      if (quiet) continue;
      if (strcmp(name, "token") == 0)
        fputs(json_string_value(json_object_get(data, "text")), out);
      else if (strcmp(name, "retry") == 0)
        fprintf(err, "\n[retry %lld in %lld ms: %s]\n",
                (long long)json_integer_value(json_object_get(data, "attempt")),
                (long long)json_integer_value(json_object_get(data, "delay_ms")),
                json_string_value(json_object_get(data, "message")));
      else if (strcmp(name, "reset") == 0)
        fprintf(err, "\n[the answer restarts]\n");
      fflush(out);
    }
    json_decref(events);
  }
  if (!quiet) fputc('\n', out);
  json_t *job = vd_llm_job(llm, id);
  print_json(out, job);
  const char *state = json_string_value(json_object_get(job, "state"));
  int rc = state && strcmp(state, "failed") != 0 ? 0 : 1;
  json_decref(job);
  vd_llm_close(llm);
  return rc;
}

static vd_llm_store *open_store(const vd_llm_config *cfg, FILE *err) {
  char path[VD_LLM_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/llm.sqlite", cfg->data_dir);
  vd_error e;
  int fd = vd_open_regular(path, &e); /* a FIFO there is refused, not waited on */
  if (fd < 0) {
    if (errno == ENOENT)
      fprintf(err, "verdict llm: no LLM store at %s\n", path);
    else
      fprintf(err, "verdict llm: %s\n", e.message);
    return NULL;
  }
  close(fd);
  vd_llm_store *store = vd_llm_store_open(path, true, &e);
  if (!store) fprintf(err, "verdict llm: %s\n", e.message);
  return store;
}

int vd_verb_llm(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {.name = "input", .takes_value = true, .help = "the job's input: JSON text or @FILE"},
      {.name = "config", .takes_value = true, .help = "a verdict config file with an llm: section"},
      {.name = "data-dir", .takes_value = true, .help = "the data folder (llm.sqlite)"},
      {.name = "feature", .takes_value = true, .help = "the feature charged (default: the task)"},
      {.name = "from", .takes_value = true, .help = "first day of costs"},
      {.name = "to", .takes_value = true, .help = "last day of costs"},
      {.name = "quiet", .takes_value = false, .help = "print only the job record"},
  };
  size_t n = sizeof options / sizeof options[0];
  const char *pos[3];
  size_t npos = 0;
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, pos, 3, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  if (npos == 0) return vd_args_usage_error("llm", err, "expected run, job or costs");
  vd_error e = {0};
  vd_llm_config *cfg = malloc(sizeof *cfg);
  if (!cfg || !vd_llm_config_load_file(cfg, vd_args_get(options, n, "config"),
                                       vd_args_get(options, n, "data-dir"), err)) {
    free(cfg);
    return 2;
  }
  int rc = 2;
  const char *verb = pos[0];
  if (strcmp(verb, "run") == 0) {
    const char *input = vd_args_get(options, n, "input");
    if (npos != 2 || !input)
      fprintf(err, "verdict llm run: needs TASK and --input (see verdict llm --help)\n");
    else
      rc = run(cfg, pos[1], input, vd_args_get(options, n, "feature"),
               vd_args_get(options, n, "quiet") != NULL, out, err);
  } else if (strcmp(verb, "job") == 0 || strcmp(verb, "costs") == 0) {
    bool job = strcmp(verb, "job") == 0;
    if (job && npos != 2) {
      fprintf(err, "verdict llm job: needs a job id\n");
    } else if (!job && npos != 1) {
      fprintf(err, "verdict llm costs: takes no positional arguments\n");
    } else {
      vd_llm_store *store = open_store(cfg, err);
      rc = 1;
      if (store && job) {
        json_t *record = vd_llm_store_get_job(store, pos[1]);
        if (record) {
          json_object_del(record, "input");
          print_json(out, record);
          rc = 0;
        } else {
          fprintf(err, "verdict llm job: no job %s\n", pos[1]);
        }
        json_decref(record);
      } else if (store) {
        char today[32];
        vd_format_rfc3339_us(vd_wall_us(), today, sizeof today);
        today[10] = '\0';
        const char *from = vd_args_get(options, n, "from");
        const char *to = vd_args_get(options, n, "to");
        json_t *rows = vd_llm_store_costs(store, from ? from : today,
                                          to ? to : (from ? "9999-12-31" : today), &e);
        if (rows) {
          print_json(out, rows);
          rc = 0;
        } else {
          fprintf(err, "verdict llm costs: %s\n", e.message);
        }
        json_decref(rows);
      }
      vd_llm_store_close(store);
    }
  } else {
    fprintf(err, "verdict llm: unknown command \"%s\" (expected run, job or costs)\n", verb);
  }
  free(cfg);
  return rc;
}
