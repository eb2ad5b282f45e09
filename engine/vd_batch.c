#include "vd_batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_batch_input.h"
#include "vd_buf.h"
#include "vd_deployment.h"
#include "vd_json_write.h"
#include "vd_pipeline.h"
#include "vd_time.h"
#include "vd_uuid.h"

enum {
  PROGRESS_WIDTH = 30, /* characters of the bar */
  MAX_SETS = 64,       /* --set options */
  MAX_JOBS = 64,       /* --jobs at most */
  BLOCK_ROWS = 512,    /* rows read, decided in parallel, then written in order */
};
static const uint64_t progress_interval_ns = 100000000; /* redraw at most 10 times a second */

/* --- the verb ------------------------------------------------------------------------------ */

static void draw_progress(FILE *f, double fraction, size_t rows, double seconds) {
  int filled = (int)(fraction * PROGRESS_WIDTH + 0.5);
  char bar[PROGRESS_WIDTH + 1];
  for (int i = 0; i < PROGRESS_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[PROGRESS_WIDTH] = '\0';
  fprintf(f, "\r[%s] %3.0f%%  %zu rows  %.0f rows/s ", bar, fraction * 100, rows,
          seconds > 0 ? (double)rows / seconds : 0.0);
  fflush(f);
}

/* Writes one output line: `line` first, then the body's members — with reals in their shortest
 * round-trip form, as the API answers them. */
static bool write_line(FILE *f, size_t line, const json_t *body) {
  json_t *obj = json_pack("{s:I}", "line", (json_int_t)line);
  json_object_update(obj, (json_t *)body);
  json_object_set_new(obj, "line", json_integer((json_int_t)line)); /* the body's own never wins */
  size_t len = 0;
  char *text = vd_json_dumps_shortest(obj, &len);
  bool ok = text && fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
  free(text);
  json_decref(obj);
  return ok;
}

static int usage(FILE *err, const char *message) {
  return vd_args_usage_error("score", err, "%s", message);
}

static const vd_verb_help help = {
    "score",
    "usage: verdict score --deployment DIR --in FILE [--out FILE.jsonl] [options]\n\n"
    "Scores every row of FILE with the deployment's decision pipeline (the server's: schema\n"
    "validation, rules, model, after-model rules) and writes one JSON line per input row:\n"
    "the API response body with \"line\", or {\"line\", \"error\"} for a rejected row\n"
    "(code invalid_request) or one whose decision failed (code internal, as the API's 500).\n"
    "FILE is JSON Lines (request bodies) or CSV; CSV columns map to request fields by the\n"
    "schema and DIR/batch.yaml (README \"Batch scoring\"), and each CSV row is scored\n"
    "against every candidate of the deployment.",
    "exit status: 0 every row decided, 1 some rows rejected or not decided, 2 bad usage or\n"
    "input"};

/* Every --set value (vd_args keeps only the last of a repeated option). */
static size_t collect_sets(int argc, char **argv, const char **sets) {
  size_t n = 0;
  for (int i = 1; i < argc && n < MAX_SETS; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
      sets[n++] = argv[++i];
    else if (strncmp(argv[i], "--set=", 6) == 0)
      sets[n++] = argv[i] + 6;
  }
  return n;
}

typedef struct run_state {
  vd_deployment *deployment;
  vd_batch_mapping *mapping;
  vd_batch_reader *reader;
  vd_uuid_gen *ids;
  vd_batch_summary *summary;
  FILE *results;
  bool close_results;
} run_state;

static void run_state_free(run_state *st) {
  if (st->close_results && st->results) fclose(st->results);
  vd_batch_summary_free(st->summary);
  vd_uuid_gen_free(st->ids);
  vd_batch_reader_close(st->reader);
  vd_batch_mapping_free(st->mapping);
  if (st->deployment) vd_deployment_release(st->deployment);
}

static bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* One input row on its way through a block: read by the main thread, decided by a worker,
 * written and counted by the main thread in input order. */
typedef struct slot {
  vd_batch_next kind; /* ROW or REJECT */
  size_t line;
  json_t *request;   /* ROW */
  vd_diags problems; /* REJECT, or the violations of a request that broke the schema */
  json_t *response;  /* decided */
  bool undecided;    /* the decision failed (err says why): the row's line is the error */
  bool failed;       /* an internal failure of the run: err says why */
  vd_error err;
} slot;

typedef struct block {
  run_state *st;
  slot *slots;
  size_t count;
  atomic_size_t next; /* the next slot a worker takes */
} block;

static void decide_slot(run_state *st, slot *sl) {
  char id[VD_UUID_STRING_SIZE];
  if (!vd_uuid_v7(st->ids, id, &sl->err)) {
    sl->failed = true;
    return;
  }
  /* only the response is written out: read back from its text, no trace tree */
  vd_pipeline_input input = {.request = sl->request, .decision_id = id, .text_only = true};
  vd_decision decision = {0};
  vd_pipeline_status status =
      vd_pipeline_decide(st->deployment, &input, &decision, &sl->problems, &sl->err);
  if (status == VD_PIPELINE_OK) {
    sl->response =
        json_loadb(decision.trace_text + decision.response_start, decision.response_len, 0, NULL);
    if (!sl->response) {
      vd_error_set(&sl->err, "line %zu: out of memory", sl->line);
      sl->failed = true;
    }
  } else if (status == VD_PIPELINE_INVALID) {
    sl->kind = VD_BATCH_REJECT;
  } else { /* as the API answers this request a 500, the row gets its error and the run goes on */
    sl->kind = VD_BATCH_REJECT;
    sl->undecided = true;
  }
  vd_decision_clear(&decision);
}

static void *work_block(void *arg) {
  block *b = arg;
  for (size_t i; (i = atomic_fetch_add(&b->next, 1)) < b->count;)
    if (b->slots[i].kind == VD_BATCH_ROW) decide_slot(b->st, &b->slots[i]);
  return NULL;
}

/* Decides every row of the block on `jobs` threads (the calling one included). */
static void decide_block(block *b, unsigned jobs) {
  pthread_t threads[MAX_JOBS];
  unsigned started = 0;
  atomic_store(&b->next, 0);
  for (unsigned j = 1; j < jobs && b->count > 1; j++)
    if (pthread_create(&threads[started], NULL, work_block, b) == 0) started++;
  work_block(b);
  for (unsigned j = 0; j < started; j++) pthread_join(threads[j], NULL);
}

/* Writes the block's lines in order and counts them; false (err set) on the first failure. */
static bool emit_block(run_state *st, block *b, vd_error *err) {
  for (size_t i = 0; i < b->count; i++) {
    slot *sl = &b->slots[i];
    if (sl->failed) {
      *err = sl->err;
      return false;
    }
    json_t *body = sl->response;
    if (body) {
      vd_batch_summary_decided(st->summary, body);
    } else if (sl->undecided) {
      vd_error why = sl->err;
      vd_error_prefix(&why, "decision failed");
      vd_diags one = {0};
      vd_diags_add(&one, &why);
      vd_batch_summary_rejected(st->summary, sl->line, &one);
      vd_diags_free(&one);
      body = json_pack("{s:I, s:{s:s, s:s}}", "line", (json_int_t)sl->line, "error", "code",
                       "internal", "message", why.message);
    } else {
      vd_batch_summary_rejected(st->summary, sl->line, &sl->problems);
      body = vd_batch_reject_json(sl->line, &sl->problems);
    }
    bool ok = write_line(st->results, sl->line, body);
    if (!sl->response) json_decref(body);
    if (!ok) return vd_error_set(err, "cannot write the results: %s", strerror(errno));
  }
  return true;
}

static void clear_block(block *b) {
  for (size_t i = 0; i < b->count; i++) {
    json_decref(b->slots[i].request);
    json_decref(b->slots[i].response);
    vd_diags_free(&b->slots[i].problems);
  }
  memset(b->slots, 0, b->count * sizeof *b->slots);
  b->count = 0;
}

/* True when both paths name one existing file (hard links and symlinks included). */
static bool same_file(const char *a, const char *b) {
  struct stat x, y;
  return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int vd_verb_score(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"deployment", true, NULL, "the deployment folder (deployment.yaml, schema, rules, model)"},
      {"in", true, NULL, "the input: JSON Lines (.jsonl) or CSV (.csv)"},
      {"out", true, NULL, "where the results go (JSON Lines; default: standard output)"},
      {"format", true, NULL, "auto (by extension, default), csv or jsonl"},
      {"map", true, NULL, "the CSV mapping (default: DIR/batch.yaml when present)"},
      {"set", true, NULL, "FIELD=VALUE: a constant field for every CSV row (repeatable)"},
      {"jobs", true, NULL, "threads deciding rows (default: the number of cores)"},
      {"no-progress", false, NULL, "no progress bar, even on a terminal"},
  };
  size_t n_options = sizeof options / sizeof options[0];
  size_t npos = 0;
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n_options, NULL, 0, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  const char *dir = vd_args_get(options, n_options, "deployment");
  const char *in = vd_args_get(options, n_options, "in");
  const char *out_path = vd_args_get(options, n_options, "out");
  const char *format_name = vd_args_get(options, n_options, "format");
  const char *map = vd_args_get(options, n_options, "map");
  if (!dir) return usage(err, "--deployment DIR is required");
  if (!in) return usage(err, "--in FILE is required");
  vd_batch_format format = VD_BATCH_AUTO;
  if (format_name && !vd_batch_format_parse(format_name, &format))
    return usage(err, "--format must be auto, csv or jsonl");
  unsigned jobs = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
  const char *jobs_text = vd_args_get(options, n_options, "jobs");
  if (jobs_text) {
    char *end = NULL;
    unsigned long v = strtoul(jobs_text, &end, 10);
    if (end == jobs_text || *end || v < 1 || v > MAX_JOBS)
      return usage(err, "--jobs must be a number from 1 to 64");
    jobs = (unsigned)v;
  }
  if (jobs < 1) jobs = 1;
  if (jobs > MAX_JOBS) jobs = MAX_JOBS;
  const char *sets[MAX_SETS];
  size_t set_count = collect_sets(argc, argv, sets);

  run_state st = {0};
  int code = 2;
  vd_diags diags = {0};
  if (in && out_path && same_file(in, out_path)) {
    fprintf(err, "verdict score: --out %s is the input file: it would be overwritten\n", out_path);
    goto done;
  }
  /* a model the deployment names but that does not load stops the run: a whole campaign scored
   * on rules alone is never what was meant (a deployment without a model scores on rules) */
  st.deployment =
      vd_deployment_load(dir, &(vd_deployment_load_options){.require_model = true}, &diags);
  if (!st.deployment) {
    for (size_t i = 0; i < diags.count; i++) {
      char text[VD_ERROR_MESSAGE_MAX + 2 * VD_ERROR_WHERE_MAX + 32];
      vd_error_format(&diags.items[i], text, sizeof text);
      fprintf(err, "%s\n", text);
    }
    fprintf(err, "verdict score: the deployment %s did not load\n", dir);
    goto done;
  }
  if (strcmp(vd_deployment_kind(st.deployment), "promotions") != 0) {
    fprintf(err, "verdict score: %s is a %s deployment; batch scoring runs promotions\n", dir,
            vd_deployment_kind(st.deployment));
    goto done;
  }
  if (vd_deployment_model_error(st.deployment))
    fprintf(err, "verdict score: warning: scoring on rules alone: %s\n",
            vd_deployment_model_error(st.deployment));
  char default_map[4096];
  snprintf(default_map, sizeof default_map, "%s/batch.yaml", dir);
  if (!map && file_exists(default_map)) map = default_map;
  st.mapping = vd_batch_mapping_load(map, &e);
  for (size_t i = 0; st.mapping && i < set_count; i++)
    if (!vd_batch_mapping_set(st.mapping, sets[i], &e)) break;
  if (!st.mapping || e.message[0]) goto fail;
  st.reader = vd_batch_reader_open(in, format, vd_deployment_schema(st.deployment), st.mapping, &e);
  if (!st.reader) goto fail;
  st.ids = vd_uuid_gen_new(&e);
  st.summary = vd_batch_summary_new();
  if (!st.ids || !st.summary) goto fail;
  if (out_path) {
    /* a FIFO or a device is refused at once: opening a FIFO to write waits for a reader */
    st.results = vd_fopen_write_regular(out_path, &e);
    st.close_results = true;
    if (!st.results) {
      vd_error_prefix(&e, "--out");
      goto fail;
    }
  } else {
    st.results = out;
  }
  FILE *report = out_path ? out : err; /* the summary never mixes into the results */
  bool progress = !vd_args_get(options, n_options, "no-progress") && isatty(fileno(err));
  uint64_t start = vd_monotonic_ns(), last_draw = 0;
  size_t rows = 0;
  block b = {.st = &st, .slots = calloc(BLOCK_ROWS, sizeof(slot))};
  if (!b.slots) {
    vd_error_set(&e, "out of memory");
    goto fail;
  }
  bool ended = false, failed = false;
  while (!ended && !failed) {
    while (b.count < BLOCK_ROWS) { /* read a block */
      slot *sl = &b.slots[b.count];
      sl->kind = vd_batch_reader_next(st.reader, &sl->request, &sl->line, &sl->problems, &e);
      if (sl->kind == VD_BATCH_END || sl->kind == VD_BATCH_FATAL) {
        failed = sl->kind == VD_BATCH_FATAL;
        ended = true;
        vd_diags_free(&sl->problems);
        break;
      }
      b.count++;
    }
    decide_block(&b, jobs);
    if (!failed && !emit_block(&st, &b, &e)) failed = true;
    rows += b.count;
    clear_block(&b);
    uint64_t now = vd_monotonic_ns();
    if (progress && now - last_draw >= progress_interval_ns) {
      draw_progress(err, vd_batch_reader_progress(st.reader), rows, (double)(now - start) / 1e9);
      last_draw = now;
    }
  }
  free(b.slots);
  if (failed) goto fail;
  double seconds = (double)(vd_monotonic_ns() - start) / 1e9;
  if (progress) {
    draw_progress(err, 1.0, rows, seconds);
    fputc('\n', err);
  }
  if (fflush(st.results) != 0) {
    vd_error_set(&e, "cannot write the results");
    goto fail;
  }
  fprintf(report, "verdict score: %s (%s) in %.2f s, %.0f rows/s\n", in,
          vd_batch_format_name(vd_batch_reader_format(st.reader)), seconds,
          seconds > 0 ? (double)rows / seconds : 0.0);
  vd_batch_summary_print(st.summary, report);
  if (vd_batch_reader_ignored_count(st.reader)) {
    fprintf(report, "ignored columns:");
    for (size_t i = 0; i < vd_batch_reader_ignored_count(st.reader); i++)
      fprintf(report, " %s", vd_batch_reader_ignored(st.reader, i));
    fputc('\n', report);
  }
  json_t *summary = vd_batch_summary_json(st.summary);
  code = json_integer_value(json_object_get(summary, "rejected")) > 0 ? 1 : 0;
  json_decref(summary);
  goto done;
fail : {
  char text[VD_ERROR_MESSAGE_MAX + 2 * VD_ERROR_WHERE_MAX + 32];
  vd_error_format(&e, text, sizeof text);
  fprintf(err, "verdict score: %s\n", text);
  code = 2;
}
done:
  vd_diags_free(&diags);
  run_state_free(&st);
  return code;
}
