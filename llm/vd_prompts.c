#include "vd_prompts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_hash.h"
#include "vd_json_schema.h"
#include "vd_time.h"
#include "vd_yaml.h"

enum { PROMPT_MAX_BYTES = 256 * 1024, HISTORY_MAX_BYTES = 64 * 1024 * 1024 };

struct vd_prompt {
  char version[VD_LLM_NAME_MAX];
  char id[VD_PROMPT_ID_SIZE];
  char sha256[VD_SHA256_HEX_SIZE];
  vd_llm_task task;
  vd_llm_tier tier;
  int max_tokens;
  double temperature;
  json_t *output_schema;
  char *text;
  const char *body; /* inside text */
};

static const char *const extract_vars[] = {"request", "known_fields", "missing_fields", NULL};
static const char *const request_only[] = {"request", NULL};

const char *const *vd_prompt_placeholders(vd_llm_task task) {
  return task == VD_LLM_TASK_EXTRACT ? extract_vars : request_only;
}

void vd_prompt_free(vd_prompt *p) {
  if (!p) return;
  json_decref(p->output_schema);
  free(p->text);
  free(p);
}

static bool valid_version(const char *s, size_t len) {
  if (len == 0 || len >= VD_LLM_NAME_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

/* Line and column (1-based) of byte offset at in text. */
static void position(const char *text, size_t at, int *line, int *column) {
  *line = 1;
  *column = 1;
  for (size_t i = 0; i < at; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *column = 1;
    } else {
      (*column)++;
    }
  }
}

static bool header_error(const vd_yaml_doc *doc, const json_t *header, const char *key,
                         vd_error *err, const char *message) {
  return vd_yaml_error(doc, header, key, 0, err, "%s: %s", key, message);
}

static bool parse_header(vd_prompt *p, const vd_yaml_doc *doc, const char *folder_task,
                         vd_error *err) {
  const json_t *h = vd_yaml_root(doc);
  if (!json_is_object(h))
    return vd_yaml_error(doc, NULL, NULL, 0, err, "the prompt header must be a mapping");
  static const char *const keys[] = {"task", "tier", "max_tokens", "temperature", "output_schema"};
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)h, key, v) {
    bool known = false;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) known |= strcmp(key, keys[i]) == 0;
    if (!known)
      return header_error(doc, h, key, err,
                          "unknown header key (expected task, tier, max_tokens, temperature, "
                          "output_schema)");
  }
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!json_object_get(h, keys[i]))
      return vd_yaml_error(doc, NULL, NULL, 0, err, "the prompt header has no `%s`", keys[i]);
  const char *task = json_string_value(json_object_get(h, "task"));
  if (!task || !vd_llm_task_parse(task, &p->task))
    return header_error(doc, h, "task", err, "expected extract, itinerary or classify");
  if (folder_task && strcmp(folder_task, task) != 0)
    return vd_yaml_error(doc, h, "task", 0, err, "task: the header says %s but the file is in %s/",
                         task, folder_task);
  const char *tier = json_string_value(json_object_get(h, "tier"));
  if (tier && strcmp(tier, "small") == 0)
    p->tier = VD_LLM_TIER_SMALL;
  else if (tier && strcmp(tier, "large") == 0)
    p->tier = VD_LLM_TIER_LARGE;
  else
    return header_error(doc, h, "tier", err, "expected small or large");
  const json_t *mt = json_object_get(h, "max_tokens");
  if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 64000)
    return header_error(doc, h, "max_tokens", err, "expected an integer in [1, 64000]");
  p->max_tokens = (int)json_integer_value(mt);
  const json_t *t = json_object_get(h, "temperature");
  if (json_is_null(t))
    p->temperature = -1;
  else if (json_is_number(t) && json_number_value(t) >= 0 && json_number_value(t) <= 2)
    p->temperature = json_number_value(t);
  else
    return header_error(doc, h, "temperature", err, "expected a number in [0, 2] or null");
  const json_t *os = json_object_get(h, "output_schema");
  if (json_is_string(os) && strcmp(json_string_value(os), "builtin") == 0) return true;
  if (!json_is_object(os))
    return header_error(doc, h, "output_schema", err,
                        "expected `builtin` or a JSON Schema mapping");
  vd_error se;
  if (!vd_json_schema_check(os, &se))
    return vd_yaml_error(doc, h, "output_schema", 0, err, "output_schema: %s%s%s", se.field,
                         se.field[0] ? ": " : "", se.message);
  p->output_schema = json_deep_copy(os);
  return true;
}

static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Every {{name}} must be one the task provides; every provided name must appear. */
static bool check_placeholders(const vd_prompt *p, const char *file, vd_error *err) {
  const char *const *vars = vd_prompt_placeholders(p->task);
  bool used[8] = {false};
  const char *s = p->body;
  while ((s = strstr(s, "{{")) != NULL) {
    const char *name = s + 2;
    size_t n = 0;
    while (is_name_char(name[n])) n++;
    int line, column;
    position(p->text, (size_t)(s - p->text), &line, &column);
    if (n == 0 || strncmp(name + n, "}}", 2) != 0)
      return vd_error_at(err, file, line, column,
                         "malformed placeholder: expected {{name}} with a lowercase name");
    bool known = false;
    for (size_t i = 0; vars[i]; i++)
      if (strlen(vars[i]) == n && strncmp(vars[i], name, n) == 0) used[i] = known = true;
    if (!known) {
      vd_buf list = {0};
      for (size_t i = 0; vars[i]; i++) vd_buf_printf(&list, "%s{{%s}}", i ? ", " : "", vars[i]);
      vd_error_at(err, file, line, column, "unknown placeholder {{%.*s}}: task %s provides %s",
                  (int)n, name, vd_llm_task_name(p->task), list.data);
      vd_buf_free(&list);
      return false;
    }
    s = name + n + 2;
  }
  for (size_t i = 0; vars[i]; i++) {
    if (used[i]) continue;
    int line, column;
    position(p->text, (size_t)(p->body - p->text), &line, &column);
    return vd_error_at(err, file, line, column,
                       "unused placeholder: the template body (from here) never uses {{%s}}, "
                       "which task %s provides",
                       vars[i], vd_llm_task_name(p->task));
  }
  return true;
}

/* The folder name just above the file ("extract" for ".../extract/v2.md"), into out. */
static void names_from_path(const char *name, char *folder, size_t fsize, char *stem,
                            size_t ssize) {
  const char *slash = strrchr(name, '/');
  const char *base = slash ? slash + 1 : name;
  const char *dot = strrchr(base, '.');
  size_t stem_len = dot ? (size_t)(dot - base) : strlen(base);
  snprintf(stem, ssize, "%.*s", (int)stem_len, base);
  folder[0] = '\0';
  if (slash) {
    const char *start = slash;
    while (start > name && start[-1] != '/') start--;
    snprintf(folder, fsize, "%.*s", (int)(slash - start), start);
  }
}

vd_prompt *vd_prompt_load_string(const char *text, size_t len, const char *name, vd_error *err) {
  if (memchr(text, '\0', len)) {
    int line, column;
    position(text, (size_t)((const char *)memchr(text, '\0', len) - text), &line, &column);
    vd_error_at(err, name, line, column, "the prompt file holds a NUL byte");
    return NULL;
  }
  vd_prompt *p = calloc(1, sizeof *p);
  if (!p || !(p->text = malloc(len + 1))) {
    free(p);
    vd_error_set(err, "out of memory");
    return NULL;
  }
  memcpy(p->text, text, len);
  p->text[len] = '\0';
  char folder[VD_LLM_NAME_MAX], stem[VD_LLM_NAME_MAX * 2];
  names_from_path(name, folder, sizeof folder, stem, sizeof stem);
  vd_llm_task folder_task;
  bool in_task_folder = vd_llm_task_parse(folder, &folder_task);
  if (!valid_version(stem, strlen(stem))) {
    vd_error_at(err, name, 1, 1,
                "the file name must be <version>.md with a version of letters, "
                "digits, '.', '-', '_' (at most %d characters)",
                VD_LLM_NAME_MAX - 1);
    goto fail;
  }
  snprintf(p->version, sizeof p->version, "%.*s", (int)sizeof p->version - 1, stem);
  if (strncmp(p->text, "---\n", 4) != 0) {
    vd_error_at(err, name, 1, 1, "a prompt file starts with a `---` line, then its header");
    goto fail;
  }
  const char *close = strstr(p->text + 3, "\n---\n");
  if (!close && len >= 4 && strcmp(p->text + len - 4, "\n---") == 0) close = p->text + len - 4;
  if (!close) {
    vd_error_at(err, name, 1, 1, "the header is not closed by a `---` line");
    goto fail;
  }
  vd_yaml_doc *doc = vd_yaml_load_string(p->text, (size_t)(close - p->text) + 1, name, err);
  if (!doc) goto fail;
  bool ok = parse_header(p, doc, in_task_folder ? folder : NULL, err);
  vd_yaml_free(doc);
  if (!ok) goto fail;
  p->body = close + 4 + (close[4] == '\n');
  if (!check_placeholders(p, name, err)) goto fail;
  vd_sha256_hex(p->text, len, p->sha256);
  snprintf(p->id, sizeof p->id, "%s@%.12s", p->version, p->sha256);
  return p;
fail:
  vd_prompt_free(p);
  return NULL;
}

vd_prompt *vd_prompt_load(const char *path, vd_error *err) {
  size_t size = 0;
  char *text = vd_read_file(path, PROMPT_MAX_BYTES, &size, err);
  if (!text) return NULL;
  vd_prompt *p = vd_prompt_load_string(text, size, path, err);
  free(text);
  return p;
}

const char *vd_prompt_version(const vd_prompt *p) { return p->version; }
const char *vd_prompt_id(const vd_prompt *p) { return p->id; }
const char *vd_prompt_sha256(const vd_prompt *p) { return p->sha256; }
vd_llm_task vd_prompt_task(const vd_prompt *p) { return p->task; }
vd_llm_tier vd_prompt_tier(const vd_prompt *p) { return p->tier; }
int vd_prompt_max_tokens(const vd_prompt *p) { return p->max_tokens; }
double vd_prompt_temperature(const vd_prompt *p) { return p->temperature; }
const json_t *vd_prompt_output_schema(const vd_prompt *p) { return p->output_schema; }
const char *vd_prompt_body(const vd_prompt *p) { return p->body; }
const char *vd_prompt_text(const vd_prompt *p) { return p->text; }
size_t vd_prompt_token_estimate(const vd_prompt *p) { return (strlen(p->body) + 3) / 4; }

char *vd_prompt_render(const vd_prompt *p, const json_t *vars, vd_error *err) {
  vd_buf out = {0};
  const char *s = p->body;
  const char *open;
  while ((open = strstr(s, "{{")) != NULL) {
    vd_buf_append(&out, s, (size_t)(open - s));
    const char *name = open + 2;
    size_t n = strcspn(name, "}");
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)n, name);
    const char *value = json_string_value(json_object_get(vars, key));
    if (!value) {
      vd_buf_free(&out);
      vd_error_set(err, "prompt %s: no value for {{%s}}", p->id, key);
      return NULL;
    }
    vd_buf_puts(&out, value);
    s = name + n + 2;
  }
  vd_buf_puts(&out, s);
  return vd_buf_take(&out);
}

static bool split_id(const char *version, char *stem, size_t size, const char **hash) {
  const char *at = strchr(version, '@');
  size_t n = at ? (size_t)(at - version) : strlen(version);
  if (!valid_version(version, n) || n >= size) return false;
  snprintf(stem, size, "%.*s", (int)n, version);
  *hash = at ? at + 1 : NULL;
  return true;
}

vd_prompt *vd_prompt_open(const char *prompts_dir, vd_llm_task task, const char *version,
                          vd_error *err) {
  char stem[VD_LLM_NAME_MAX];
  const char *hash = NULL;
  if (!split_id(version, stem, sizeof stem, &hash)) {
    vd_error_set(err,
                 "prompt version \"%s\" may hold only letters, digits, '.', '-', '_' "
                 "(optionally @ and its hash)",
                 version);
    return NULL;
  }
  vd_buf path = {0};
  vd_buf_printf(&path, "%s/%s/%s.md", prompts_dir, vd_llm_task_name(task), stem);
  vd_prompt *p = vd_prompt_load(path.data, err);
  if (p && vd_prompt_task(p) != task) {
    vd_error_at(err, path.data, 1, 1, "the header says task %s, expected %s",
                vd_llm_task_name(vd_prompt_task(p)), vd_llm_task_name(task));
    vd_prompt_free(p);
    p = NULL;
  }
  if (p && hash && strncmp(p->sha256, hash, strlen(hash)) != 0) {
    vd_error_at(err, path.data, 1, 1,
                "prompt %s changed since %s was recorded (the file is now %s): restore the file "
                "or use a new version name",
                stem, version, p->id);
    vd_prompt_free(p);
    p = NULL;
  }
  vd_buf_free(&path);
  return p;
}

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *vd_prompts_list(const char *prompts_dir, vd_llm_task task, vd_error *err) {
  vd_buf dir = {0};
  vd_buf_printf(&dir, "%s/%s", prompts_dir, vd_llm_task_name(task));
  DIR *d = opendir(dir.data);
  if (!d) {
    vd_error_set(err, "%s: %s", dir.data, strerror(errno));
    vd_buf_free(&dir);
    return NULL;
  }
  char **names = NULL;
  size_t count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0 || e->d_name[0] == '.') continue;
    char **grown = realloc(names, (count + 1) * sizeof *names);
    if (!grown) break;
    names = grown;
    if (!(names[count] = strdup(e->d_name))) break;
    count++;
  }
  closedir(d);
  if (names) qsort(names, count, sizeof *names, compare_strings);
  json_t *list = json_array();
  for (size_t i = 0; i < count; i++) {
    vd_buf path = {0};
    vd_buf_printf(&path, "%s/%s", dir.data, names[i]);
    vd_error le;
    vd_prompt *p = vd_prompt_load(path.data, &le);
    if (p) {
      json_array_append_new(
          list,
          json_pack("{s:s,s:s,s:s,s:I,s:s,s:i}", "version", p->version, "id", p->id, "sha256",
                    p->sha256, "tokens", (json_int_t)vd_prompt_token_estimate(p), "tier",
                    p->tier == VD_LLM_TIER_SMALL ? "small" : "large", "max_tokens", p->max_tokens));
    } else {
      char line[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
      vd_error_format(&le, line, sizeof line);
      json_array_append_new(
          list, json_pack("{s:s%,s:s}", "version", names[i], strlen(names[i]) - 3, "error", line));
    }
    vd_prompt_free(p);
    vd_buf_free(&path);
    free(names[i]);
  }
  free(names);
  vd_buf_free(&dir);
  return list;
}

/* ---- history ---- */

static void history_path(const char *data_dir, vd_buf *path) {
  vd_buf_printf(path, "%s/prompts/history.jsonl", data_dir);
}

json_t *vd_prompts_history(const char *data_dir, vd_llm_task task, vd_error *err) {
  vd_buf path = {0};
  history_path(data_dir, &path);
  json_t *out = json_array();
  vd_error why;
  FILE *f = vd_fopen_regular(path.data, &why);
  if (!f) {
    if (errno != ENOENT) {
      if (err) *err = why;
      json_decref(out);
      out = NULL;
    }
    vd_buf_free(&path);
    return out;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int number = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    number++;
    json_error_t jerr;
    json_t *entry = json_loadb(line, (size_t)n, 0, &jerr);
    if (!json_is_object(entry)) {
      vd_error_at(err, path.data, number, jerr.column, "not a history entry: %s", jerr.text);
      json_decref(entry);
      json_decref(out);
      out = NULL;
      break;
    }
    if (strcmp(json_string_value(json_object_get(entry, "task")) ?: "", vd_llm_task_name(task)) ==
        0)
      json_array_append(out, entry);
    json_decref(entry);
  }
  free(line);
  fclose(f);
  vd_buf_free(&path);
  return out;
}

/* Replays the history as a stack of active versions; returns its depth. */
static size_t active_stack(const json_t *history, const char **stack, size_t cap) {
  size_t depth = 0;
  size_t i;
  json_t *e;
  json_array_foreach(history, i, e) {
    const char *action = json_string_value(json_object_get(e, "action"));
    const char *version = json_string_value(json_object_get(e, "id"));
    if (action && strcmp(action, "rollback") == 0) {
      if (depth > 1) depth--;
    } else if (version && depth < cap) {
      /* the first activation remembers what served before it (the config's version) */
      const char *previous = json_string_value(json_object_get(e, "previous"));
      if (depth == 0 && previous && cap > 1) stack[depth++] = previous;
      stack[depth++] = version;
    }
  }
  return depth;
}

enum { STACK_MAX = 4096 };

bool vd_prompts_active(const char *data_dir, vd_llm_task task, char *version, vd_error *err) {
  version[0] = '\0';
  err->message[0] = '\0';
  json_t *history = vd_prompts_history(data_dir, task, err);
  if (!history) return false;
  const char **stack = malloc(STACK_MAX * sizeof *stack);
  size_t depth = stack ? active_stack(history, stack, STACK_MAX) : 0;
  if (depth) snprintf(version, VD_PROMPT_ID_SIZE, "%s", stack[depth - 1]);
  free(stack);
  json_decref(history);
  return depth > 0;
}

static bool append_history(const char *data_dir, json_t *entry, vd_error *err) {
  vd_buf dir = {0}, path = {0};
  vd_buf_printf(&dir, "%s/prompts", data_dir);
  mkdir(data_dir, 0755);
  if (mkdir(dir.data, 0755) != 0 && errno != EEXIST) {
    vd_error_set(err, "%s: %s", dir.data, strerror(errno));
    vd_buf_free(&dir);
    return false;
  }
  history_path(data_dir, &path);
  bool ok = false;
  char *line = json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS);
  /* a FIFO or device there is refused (err says which): opening a FIFO would block */
  int fd = line ? vd_open_write_regular(path.data, O_APPEND, err) : -1;
  if (!line) {
    vd_error_set(err, "%s: out of memory", path.data);
  } else if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
    vd_error_set(err, "%s: cannot lock: %s", path.data, strerror(errno));
  } else if (fd >= 0) { /* (fd < 0: err says why) */
    vd_buf b = {0};
    vd_buf_printf(&b, "%s\n", line);
    ok = write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
    if (!ok) vd_error_set(err, "%s: cannot write: %s", path.data, strerror(errno));
    vd_buf_free(&b);
  }
  if (fd >= 0) close(fd);
  free(line);
  vd_buf_free(&dir);
  vd_buf_free(&path);
  return ok;
}

static json_t *entry_for(vd_llm_task task, const char *action, const vd_prompt *p, const char *who,
                         const char *why) {
  char at[64];
  vd_format_rfc3339_us(vd_wall_us(), at, sizeof at);
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "at", at, "task", vd_llm_task_name(task),
                   "action", action, "version", vd_prompt_version(p), "id", vd_prompt_id(p), "who",
                   who, "why", why);
}

static bool check_who_why(const char *who, const char *why, vd_error *err) {
  if (!who || !*who) return vd_error_set(err, "who made the change is required (--who)");
  if (!why || !*why) return vd_error_set(err, "why the change was made is required (--why)");
  return true;
}

bool vd_prompts_activate(const char *data_dir, const char *prompts_dir, vd_llm_task task,
                         const char *version, const char *initial, const char *who, const char *why,
                         vd_error *err) {
  if (!check_who_why(who, why, err)) return false;
  char active[VD_PROMPT_ID_SIZE];
  if (!vd_prompts_active(data_dir, task, active, err) && err->message[0]) return false;
  char previous[VD_PROMPT_ID_SIZE] = "";
  if (active[0]) {
    snprintf(previous, sizeof previous, "%s", active);
  } else if (initial && *initial) { /* pin the config's version by its content id */
    vd_error ignored;
    vd_prompt *before = vd_prompt_open(prompts_dir, task, initial, &ignored);
    snprintf(previous, sizeof previous, "%s", before ? vd_prompt_id(before) : initial);
    vd_prompt_free(before);
  }
  vd_prompt *p = vd_prompt_open(prompts_dir, task, version, err);
  if (!p) return false;
  json_t *entry = entry_for(task, "activate", p, who, why);
  if (previous[0]) json_object_set_new(entry, "previous", json_string(previous));
  bool ok = append_history(data_dir, entry, err);
  json_decref(entry);
  vd_prompt_free(p);
  return ok;
}

bool vd_prompts_rollback(const char *data_dir, const char *prompts_dir, vd_llm_task task,
                         const char *who, const char *why, char *restored, vd_error *err) {
  restored[0] = '\0';
  if (!check_who_why(who, why, err)) return false;
  json_t *history = vd_prompts_history(data_dir, task, err);
  if (!history) return false;
  const char **stack = malloc(STACK_MAX * sizeof *stack);
  size_t depth = stack ? active_stack(history, stack, STACK_MAX) : 0;
  bool ok = false;
  if (depth < 2) {
    vd_error_set(err, "task %s has no previously active prompt version to roll back to",
                 vd_llm_task_name(task));
  } else {
    vd_prompt *p = vd_prompt_open(prompts_dir, task, stack[depth - 2], err);
    if (p) {
      json_t *entry = entry_for(task, "rollback", p, who, why);
      ok = append_history(data_dir, entry, err);
      if (ok) snprintf(restored, VD_PROMPT_ID_SIZE, "%s", vd_prompt_id(p));
      json_decref(entry);
      vd_prompt_free(p);
    }
  }
  free(stack);
  json_decref(history);
  return ok;
}
