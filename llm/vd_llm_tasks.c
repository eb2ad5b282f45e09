#include "vd_llm_tasks.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vd_extract_rules.h"
#include "vd_hash.h"
#include "vd_json_file.h"
#include "vd_json_schema.h"
#include "vd_prompts.h"

enum { CATALOGUE_MAX_BYTES = 4 * 1024 * 1024 };

struct vd_llm_tasks {
  vd_prompt *prompts[VD_LLM_TASK_COUNT]; /* the registry's active version (NULL: disabled) */
  char prompt_versions[VD_LLM_TASK_COUNT][VD_LLM_NAME_MAX + 16];
  json_t *output_schemas[VD_LLM_TASK_COUNT];
  json_t *input_schemas[VD_LLM_TASK_COUNT];
  json_t *catalogue;       /* the itinerary template's activities */
  vd_gazetteer *gazetteer; /* the rules extractor's places (NULL: none configured) */
};

/* The interests vocabulary of the extraction golden set (extraction/README.md). */
#define INTERESTS                                                                           \
  "\"architecture\",\"art\",\"beaches\",\"cycling\",\"diving\",\"festivals\",\"food\","     \
  "\"hiking\",\"history\",\"markets\",\"museums\",\"music\",\"nightlife\",\"photography\"," \
  "\"shopping\",\"skiing\",\"spa\",\"sports\",\"temples\",\"theme parks\",\"wildlife\",\"wine\""

static const char extract_output_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"destinations\",\"start_date\",\"end_date\",\"nights\",\"adults\","
    "\"children\",\"budget\",\"interests\"],"
    "\"properties\":{"
    "\"destinations\":{\"type\":\"array\",\"maxItems\":10,\"items\":{\"type\":\"string\","
    "\"minLength\":1,\"maxLength\":100}},"
    "\"start_date\":{\"type\":[\"string\",\"null\"],\"minLength\":10,\"maxLength\":10},"
    "\"end_date\":{\"type\":[\"string\",\"null\"],\"minLength\":10,\"maxLength\":10},"
    "\"nights\":{\"type\":[\"integer\",\"null\"],\"minimum\":0,\"maximum\":365},"
    "\"adults\":{\"type\":[\"integer\",\"null\"],\"minimum\":0,\"maximum\":50},"
    "\"children\":{\"type\":[\"integer\",\"null\"],\"minimum\":0,\"maximum\":50},"
    "\"budget\":{\"type\":[\"string\",\"null\"],\"enum\":[\"low\",\"mid\",\"high\",null]},"
    "\"interests\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[" INTERESTS "]}}}}";

static const char extract_input_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"text\"],"
    "\"properties\":{\"text\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":10000},"
    "\"reference_date\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":10}}}";

static const char itinerary_output_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"destination\",\"days\"],"
    "\"properties\":{"
    "\"destination\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"summary\":{\"type\":\"string\",\"maxLength\":2000},"
    "\"days\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":31,\"items\":{"
    "\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"day\",\"date\",\"activities\"],\"properties\":{"
    "\"day\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":31},"
    "\"date\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":10},"
    "\"activities\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":8,\"items\":{"
    "\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"time\",\"title\"],"
    "\"properties\":{\"time\":{\"type\":\"string\",\"enum\":[\"morning\",\"afternoon\","
    "\"evening\"]},\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"description\":{\"type\":\"string\",\"maxLength\":1000},"
    "\"interest\":{\"type\":\"string\",\"maxLength\":50}}}}}}}}}";

static const char itinerary_input_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"destination\",\"start_date\",\"end_date\"],\"properties\":{"
    "\"destination\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"start_date\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":10},"
    "\"end_date\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":10},"
    "\"travelers\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":20},"
    "\"interests\":{\"type\":\"array\",\"maxItems\":20,\"items\":{\"type\":\"string\","
    "\"minLength\":1,\"maxLength\":50}}}}";

static const char classify_output_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"intent\",\"route\",\"confidence\"],\"properties\":{"
    "\"intent\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"route\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"rationale\":{\"type\":\"string\",\"maxLength\":1000}}}";

static const char classify_input_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"text\"],"
    "\"properties\":{\"text\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":10000},"
    "\"channel\":{\"type\":\"string\",\"maxLength\":100},"
    "\"provisional\":{\"type\":\"object\",\"properties\":{"
    "\"intent\":{\"type\":\"string\"},\"route\":{\"type\":\"string\"},"
    "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1}}},"
    "\"routes\":{\"type\":\"array\",\"maxItems\":200,\"items\":{\"type\":\"string\","
    "\"minLength\":1}},"
    "\"intents\":{\"type\":\"array\",\"maxItems\":500,\"items\":{\"type\":\"string\","
    "\"minLength\":1}}}}";

static const char *const output_schema_text[VD_LLM_TASK_COUNT] = {
    extract_output_schema, itinerary_output_schema, classify_output_schema};
static const char *const input_schema_text[VD_LLM_TASK_COUNT] = {
    extract_input_schema, itinerary_input_schema, classify_input_schema};

/* ---- dates (proleptic Gregorian, days since 1970-01-01) ---- */

static bool parse_date(const char *s, long *days) {
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) return false;
  int y = (int)strtol(s, NULL, 10), m = (int)strtol(s + 5, NULL, 10),
      d = (int)strtol(s + 8, NULL, 10);
  static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > month_days[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return false;
  /* Howard Hinnant's days_from_civil. */
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  *days = era * 146097 + doe - 719468;
  return true;
}

static void format_date(long z, char out[16]) {
  z += 719468;
  long era = (z >= 0 ? z : z - 146096) / 146097;
  long doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long y = yoe + era * 400;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long mp = (5 * doy + 2) / 153;
  long d = doy - (153 * mp + 2) / 5 + 1;
  long m = mp + (mp < 10 ? 3 : -9);
  long year = y + (m <= 2);
  if (year < 0 || year > 9999) year = 0; /* outside what parse_date accepts */
  snprintf(out, 16, "%04d-%02d-%02d", (int)(year % 10000), (int)(m % 13), (int)(d % 32));
}

/* ---- load ---- */

static json_t *parse_builtin(const char *text) {
  json_t *doc = json_loads(text, 0, NULL);
  /* The built-in schemas are part of the program: a typo here is a bug caught by every test. */
  if (!doc || !vd_json_schema_check(doc, NULL)) abort();
  return doc;
}

/* The task's prompt from the registry: the version the data folder's history activated, else
 * the config's prompt_version. An inline output schema in its header replaces the built-in one. */
static bool load_prompt(vd_llm_tasks *t, const vd_llm_config *cfg, vd_llm_task task,
                        vd_error *err) {
  const vd_llm_task_config *tc = &cfg->tasks[task];
  if (!tc->enabled) {
    snprintf(t->prompt_versions[task], sizeof t->prompt_versions[task], "none");
    return true;
  }
  char active[VD_PROMPT_ID_SIZE];
  vd_error history_err = {0};
  if (!vd_prompts_active(cfg->data_dir, task, active, &history_err) && history_err.message[0]) {
    *err = history_err;
    return false;
  }
  const char *version = active[0] ? active : tc->prompt_version;
  if (!(t->prompts[task] = vd_prompt_open(cfg->prompts_dir, task, version, err))) {
    vd_error_prefix(err, "prompt for task %s", vd_llm_task_name(task));
    return false;
  }
  snprintf(t->prompt_versions[task], sizeof t->prompt_versions[task], "%s",
           vd_prompt_id(t->prompts[task]));
  const json_t *schema = vd_prompt_output_schema(t->prompts[task]);
  if (schema) {
    json_decref(t->output_schemas[task]);
    t->output_schemas[task] = json_deep_copy(schema);
  }
  return true;
}

static bool check_catalogue(const json_t *cat, const char *path, vd_error *err) {
  const json_t *generic = json_object_get(cat, "generic");
  const json_t *places = json_object_get(cat, "destinations");
  if (!json_is_array(generic) || json_array_size(generic) == 0)
    return vd_error_field(err, "generic", "%s: expected a non-empty list of activities", path);
  if (places && !json_is_object(places))
    return vd_error_field(err, "destinations", "%s: expected an object of place → activities",
                          path);
  return true;
}

vd_llm_tasks *vd_llm_tasks_load(const vd_llm_config *cfg, vd_error *err) {
  vd_llm_tasks *t = calloc(1, sizeof *t);
  if (!t) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  for (int i = 0; i < VD_LLM_TASK_COUNT; i++) {
    t->output_schemas[i] = parse_builtin(output_schema_text[i]);
    t->input_schemas[i] = parse_builtin(input_schema_text[i]);
    if (!load_prompt(t, cfg, (vd_llm_task)i, err)) goto fail;
  }
  if (cfg->catalogue_path[0]) {
    t->catalogue = vd_json_load_file(cfg->catalogue_path, CATALOGUE_MAX_BYTES, 0, err);
    if (!t->catalogue) {
      vd_error_prefix(err, "activity catalogue");
      goto fail;
    }
    if (!check_catalogue(t->catalogue, cfg->catalogue_path, err)) goto fail;
  }
  if (cfg->gazetteer_path[0] && !(t->gazetteer = vd_gazetteer_load(cfg->gazetteer_path, err)))
    goto fail;
  return t;
fail:
  vd_llm_tasks_free(t);
  return NULL;
}

void vd_llm_tasks_free(vd_llm_tasks *t) {
  if (!t) return;
  for (int i = 0; i < VD_LLM_TASK_COUNT; i++) {
    vd_prompt_free(t->prompts[i]);
    json_decref(t->output_schemas[i]);
    json_decref(t->input_schemas[i]);
  }
  json_decref(t->catalogue);
  vd_gazetteer_free(t->gazetteer);
  free(t);
}

const char *vd_llm_tasks_prompt_version(const vd_llm_tasks *t, vd_llm_task task) {
  return t->prompt_versions[task];
}

const vd_prompt *vd_llm_tasks_prompt(const vd_llm_tasks *t, vd_llm_task task) {
  return t->prompts[task];
}

const json_t *vd_llm_tasks_output_schema(const vd_llm_tasks *t, vd_llm_task task) {
  return t->output_schemas[task];
}

const char *vd_llm_tasks_fallback_kind(vd_llm_task task) {
  return task == VD_LLM_TASK_ITINERARY ? "template" : "rules";
}

/* ---- input normalisation ---- */

/* Trims and collapses runs of whitespace, so inputs that differ only in spacing share a cache
 * entry. */
static json_t *normalise_strings(const json_t *v) {
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    vd_buf b = {0};
    bool space = false;
    for (; *s; s++) {
      if (isspace((unsigned char)*s)) {
        space = b.len > 0;
        continue;
      }
      if (space) vd_buf_append(&b, " ", 1);
      space = false;
      vd_buf_append(&b, s, 1);
    }
    json_t *out = json_stringn(b.data ? b.data : "", b.len);
    vd_buf_free(&b);
    return out;
  }
  if (json_is_array(v)) {
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) json_array_append_new(out, normalise_strings(item));
    return out;
  }
  if (json_is_object(v)) {
    json_t *out = json_object();
    const char *k;
    json_t *item;
    json_object_foreach((json_t *)v, k, item) json_object_set_new(out, k, normalise_strings(item));
    return out;
  }
  return json_deep_copy(v);
}

static bool first_diag(vd_diags *diags, vd_error *err, const char *what) {
  if (diags->count == 0) return true;
  vd_error_field(err, diags->items[0].field, "%s: %s%s", what, diags->items[0].message,
                 diags->count > 1 ? " (and more)" : "");
  vd_diags_free(diags);
  return false;
}

json_t *vd_llm_tasks_normalise(const vd_llm_tasks *t, vd_llm_task task, const json_t *input,
                               const char *today, vd_error *err) {
  vd_diags diags = {0};
  vd_json_schema_validate(t->input_schemas[task], input, &diags);
  if (!first_diag(&diags, err, "invalid input")) return NULL;
  json_t *in = normalise_strings(input);
  long a = 0, b = 0;
  if (task == VD_LLM_TASK_EXTRACT) {
    if (!json_object_get(in, "reference_date"))
      json_object_set_new(in, "reference_date", json_string(today));
    if (!parse_date(json_string_value(json_object_get(in, "reference_date")), &a)) {
      vd_error_field(err, "reference_date", "invalid input: expected a date YYYY-MM-DD");
      goto fail;
    }
  } else if (task == VD_LLM_TASK_ITINERARY) {
    if (!parse_date(json_string_value(json_object_get(in, "start_date")), &a)) {
      vd_error_field(err, "start_date", "invalid input: expected a date YYYY-MM-DD");
      goto fail;
    }
    if (!parse_date(json_string_value(json_object_get(in, "end_date")), &b)) {
      vd_error_field(err, "end_date", "invalid input: expected a date YYYY-MM-DD");
      goto fail;
    }
    if (b < a) {
      vd_error_field(err, "end_date", "invalid input: end_date is before start_date");
      goto fail;
    }
    if (b - a + 1 > 31) {
      vd_error_field(err, "end_date", "invalid input: a trip of %ld days is longer than 31",
                     b - a + 1);
      goto fail;
    }
    if (!json_object_get(in, "travelers")) json_object_set_new(in, "travelers", json_integer(1));
    json_t *interests = json_object_get(in, "interests");
    if (!interests) json_object_set_new(in, "interests", interests = json_array());
    /* Interests are a set: lowercase, sorted, unique. */
    json_t *set = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(interests, i, item) {
      char word[64];
      snprintf(word, sizeof word, "%s", json_string_value(item));
      for (char *c = word; *c; c++) *c = (char)tolower((unsigned char)*c);
      size_t at = 0;
      bool dup = false;
      for (; at < json_array_size(set); at++) {
        int cmp = strcmp(json_string_value(json_array_get(set, at)), word);
        if (cmp == 0) dup = true;
        if (cmp >= 0) break;
      }
      if (!dup) json_array_insert_new(set, at, json_string(word));
    }
    json_object_set_new(in, "interests", set);
  }
  return in;
fail:
  json_decref(in);
  return NULL;
}

/* ---- plans ---- */

/* The task's wording is the prompt file (the user message); the system prompt only fixes the
 * answer's form. */
static char *system_prompt(const vd_llm_tasks *t, vd_llm_task task) {
  vd_buf b = {0};
  char *schema = json_dumps(t->output_schemas[task], JSON_COMPACT);
  vd_buf_printf(&b,
                "Reply with one JSON object and nothing else. It must satisfy this JSON "
                "Schema:\n%s\n",
                schema ? schema : "{}");
  free(schema);
  return vd_buf_take(&b);
}

static json_t *user_message(const char *content) {
  json_t *messages = json_array();
  json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", content));
  return messages;
}

/* The rules extractor's answer for an extract input: all eight fields, and which of them it
 * filled with confidence. Without a gazetteer it still reads dates, counts, budget and interests.
 */
static json_t *rules_extract(const vd_llm_tasks *t, const json_t *input, unsigned *confident,
                             vd_error *err) {
  const json_t *text = json_object_get(input, "text");
  vd_extract_result r = {0};
  if (!vd_extract_rules(t->gazetteer, json_string_value(text), json_string_length(text),
                        json_string_value(json_object_get(input, "reference_date")), &r, err))
    return NULL;
  *confident = r.confident;
  return r.fields;
}

bool vd_llm_tasks_plan(const vd_llm_tasks *t, vd_llm_task task, const json_t *input,
                       vd_llm_plan *plan, vd_error *err) {
  memset(plan, 0, sizeof *plan);
  plan->need_llm = true;
  char *in = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
  if (!in) return vd_error_set(err, "cannot encode the job input");
  json_t *vars = json_pack("{s:s}", "request", in);
  if (task == VD_LLM_TASK_EXTRACT) {
    plan->partial = rules_extract(t, input, &plan->confident, err);
    if (!plan->partial) {
      free(in);
      json_decref(vars);
      return false;
    }
    json_t *missing = vd_extract_missing_fields(plan->confident);
    plan->need_llm = json_array_size(missing) > 0;
    char *known = json_dumps(plan->partial, JSON_COMPACT | JSON_SORT_KEYS);
    char *want = json_dumps(missing, JSON_COMPACT);
    json_object_set_new(vars, "known_fields", json_string(known ? known : "{}"));
    json_object_set_new(vars, "missing_fields", json_string(want ? want : "[]"));
    free(known);
    free(want);
    json_decref(missing);
  }
  free(in);
  char *content = t->prompts[task] ? vd_prompt_render(t->prompts[task], vars, err) : strdup("");
  json_decref(vars);
  if (!content) {
    vd_llm_plan_free(plan);
    return false;
  }
  plan->system = system_prompt(t, task);
  plan->messages = user_message(content);
  free(content);
  return true;
}

void vd_llm_plan_free(vd_llm_plan *plan) {
  json_decref(plan->partial);
  free(plan->system);
  json_decref(plan->messages);
  memset(plan, 0, sizeof *plan);
}

/* ---- accepting an answer ---- */

/* The JSON object in the answer: the whole text, or the span from the first '{' to the last '}'
 * (models wrap answers in ``` fences or a sentence). */
static json_t *answer_object(const char *text, vd_buf *problems) {
  json_error_t jerr;
  json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(doc)) {
    json_decref(doc);
    const char *open = strchr(text, '{');
    const char *close = strrchr(text, '}');
    doc = open && close && close > open
              ? json_loadb(open, (size_t)(close - open + 1), JSON_REJECT_DUPLICATES, &jerr)
              : NULL;
  }
  if (!json_is_object(doc)) {
    json_decref(doc);
    vd_buf_printf(problems, "the answer is not a JSON object (%s)",
                  jerr.text[0] ? jerr.text : "no object found");
    return NULL;
  }
  return doc;
}

static void describe(vd_buf *problems, const vd_diags *diags) {
  for (size_t i = 0; i < diags->count && i < 20; i++)
    vd_buf_printf(problems, "%s%s: %s", problems->len ? "; " : "", diags->items[i].field,
                  diags->items[i].message);
}

static bool check_itinerary_days(const json_t *input, const json_t *result, vd_buf *problems) {
  long a = 0, b = 0;
  parse_date(json_string_value(json_object_get(input, "start_date")), &a);
  parse_date(json_string_value(json_object_get(input, "end_date")), &b);
  const json_t *days = json_object_get(result, "days");
  if ((long)json_array_size(days) != b - a + 1) {
    vd_buf_printf(problems, "days: expected %ld days (start_date to end_date), got %zu", b - a + 1,
                  json_array_size(days));
    return false;
  }
  size_t i;
  json_t *day;
  json_array_foreach(days, i, day) {
    char want[16];
    format_date(a + (long)i, want);
    if (strcmp(json_string_value(json_object_get(day, "date")), want) != 0 ||
        json_integer_value(json_object_get(day, "day")) != (json_int_t)i + 1) {
      vd_buf_printf(problems, "days[%zu]: expected day %zu on %s", i, i + 1, want);
      return false;
    }
  }
  return true;
}

/* True when answer[field] is in input[list] (or equals also_allowed), or no list was given. */
static bool one_of(const json_t *input, const char *list, const json_t *answer, const char *field,
                   const char *also_allowed, vd_buf *problems) {
  const json_t *allowed = json_object_get(input, list);
  const char *value = json_string_value(json_object_get(answer, field));
  if (!allowed || json_array_size(allowed) == 0 || !value) return true;
  if (also_allowed && strcmp(value, also_allowed) == 0) return true;
  size_t i;
  json_t *a;
  json_array_foreach(allowed, i, a) {
    if (strcmp(json_string_value(a), value) == 0) return true;
  }
  vd_buf_printf(problems, "%s%s: \"%s\" is not one of the allowed %s", problems->len ? "; " : "",
                field, value, list);
  return false;
}

json_t *vd_llm_tasks_accept(const vd_llm_tasks *t, vd_llm_task task, const json_t *input,
                            const vd_llm_plan *plan, const char *text, vd_buf *problems) {
  json_t *answer = answer_object(text, problems);
  if (!answer) return NULL;
  if (task == VD_LLM_TASK_EXTRACT && plan->partial) {
    /* The rules' confident fields win; the model fills only the others. The merged object is
     * validated below, so an invalid model value never reaches the result. */
    json_t *merged = vd_extract_merge(plan->partial, plan->confident, answer);
    json_decref(answer);
    answer = merged;
  }
  vd_diags diags = {0};
  const json_t *schema = t->output_schemas[task];
  bool ok = vd_json_schema_validate(schema, answer, &diags);
  describe(problems, &diags);
  vd_diags_free(&diags);
  if (ok && task == VD_LLM_TASK_ITINERARY) ok = check_itinerary_days(input, answer, problems);
  if (ok && task == VD_LLM_TASK_CLASSIFY)
    ok = one_of(input, "routes", answer, "route", NULL, problems) &&
         one_of(input, "intents", answer, "intent", "oos", problems);
  if (!ok) {
    json_decref(answer);
    return NULL;
  }
  json_object_set_new(answer, "source", json_string("llm"));
  return answer;
}

char *vd_llm_tasks_repair_prompt(const char *problems) {
  vd_buf b = {0};
  vd_buf_printf(&b,
                "Your answer could not be used: %s\n"
                "Reply again with only the corrected JSON object, satisfying the schema.",
                problems);
  return vd_buf_take(&b);
}

/* ---- fallbacks ---- */

static bool has_interest(const json_t *interests, const char *interest) {
  size_t i;
  json_t *v;
  json_array_foreach(interests, i, v) {
    if (interest && strcasecmp(json_string_value(v), interest) == 0) return true;
  }
  return false;
}

/* Activities known for a destination: an exact (case-insensitive) match of "City, Country", or
 * of the city part alone. */
static const json_t *place_activities(const json_t *catalogue, const char *destination) {
  const json_t *places = json_object_get(catalogue, "destinations");
  const char *name;
  json_t *list;
  size_t city_len = strcspn(destination, ",");
  json_object_foreach((json_t *)places, name, list) {
    if (strcasecmp(name, destination) == 0) return list;
    if (strlen(name) >= city_len && strncasecmp(name, destination, city_len) == 0 &&
        (name[city_len] == ',' || name[city_len] == '\0'))
      return list;
  }
  return NULL;
}

static const char *const slots[] = {"morning", "afternoon", "evening"};

/* The index of the least-used activity for the slot, preferring the traveller's interests; -1
 * when the pool has none for that slot. */
static ptrdiff_t pick(const json_t *pool, const char *slot, const json_t *interests,
                      const int *uses) {
  ptrdiff_t best = -1;
  int best_score = 0;
  size_t i;
  json_t *a;
  json_array_foreach(pool, i, a) {
    const char *time = json_string_value(json_object_get(a, "time"));
    if (time && strcmp(time, slot) != 0) continue;
    if (!json_string_value(json_object_get(a, "title"))) continue;
    bool liked = has_interest(interests, json_string_value(json_object_get(a, "interest")));
    int score = 1000 - uses[i] * 100 + (liked ? 10 : 0);
    if (best < 0 || score > best_score) best = (ptrdiff_t)i, best_score = score;
  }
  return best;
}

static json_t *template_itinerary(const vd_llm_tasks *t, const json_t *input, vd_error *err) {
  const char *destination = json_string_value(json_object_get(input, "destination"));
  const json_t *interests = json_object_get(input, "interests");
  long a = 0, b = 0;
  parse_date(json_string_value(json_object_get(input, "start_date")), &a);
  parse_date(json_string_value(json_object_get(input, "end_date")), &b);
  if (!t->catalogue) {
    vd_error_set(err, "no activity catalogue is configured for the itinerary template");
    return NULL;
  }
  json_t *pool = json_array();
  const json_t *local = place_activities(t->catalogue, destination);
  if (json_is_array(local)) json_array_extend(pool, (json_t *)local);
  json_array_extend(pool, json_object_get(t->catalogue, "generic"));
  int *counts = calloc(json_array_size(pool) + 1, sizeof *counts); /* uses per activity */
  json_t *days = json_array();
  for (long d = a; d <= b; d++) {
    char date[16];
    format_date(d, date);
    json_t *activities = json_array();
    for (size_t s = 0; s < 3; s++) {
      ptrdiff_t at = pick(pool, slots[s], interests, counts);
      if (at < 0) continue;
      counts[at]++;
      const json_t *act = json_array_get(pool, (size_t)at);
      json_t *entry = json_pack("{s:s,s:s}", "time", slots[s], "title",
                                json_string_value(json_object_get(act, "title")));
      const char *desc = json_string_value(json_object_get(act, "description"));
      const char *interest = json_string_value(json_object_get(act, "interest"));
      if (desc) json_object_set_new(entry, "description", json_string(desc));
      if (interest) json_object_set_new(entry, "interest", json_string(interest));
      json_array_append_new(activities, entry);
    }
    json_array_append_new(days, json_pack("{s:I,s:s,s:o}", "day", (json_int_t)d - (json_int_t)a + 1,
                                          "date", date, "activities", activities));
  }
  free(counts);
  json_decref(pool);
  char summary[400];
  snprintf(summary, sizeof summary,
           "Template itinerary for %s from the activity catalogue%s (not generated by an LLM).",
           destination, local ? "" : " (general activities: the destination is not catalogued)");
  json_t *result =
      json_pack("{s:s,s:s,s:o}", "destination", destination, "summary", summary, "days", days);
  vd_diags diags = {0};
  if (!vd_json_schema_validate(t->output_schemas[VD_LLM_TASK_ITINERARY], result, &diags)) {
    first_diag(&diags, err, "the template itinerary does not meet the output schema");
    json_decref(result);
    return NULL;
  }
  json_object_set_new(result, "source", json_string("template"));
  return result;
}

json_t *vd_llm_tasks_fallback(const vd_llm_tasks *t, vd_llm_task task, const json_t *input,
                              const vd_llm_plan *plan, vd_error *err) {
  if (task == VD_LLM_TASK_ITINERARY) return template_itinerary(t, input, err);
  if (task == VD_LLM_TASK_EXTRACT) {
    unsigned confident = 0;
    json_t *fields = plan && plan->partial ? json_deep_copy(plan->partial)
                                           : rules_extract(t, input, &confident, err);
    if (fields) json_object_set_new(fields, "source", json_string("rules"));
    return fields;
  }
  /* classify: keep the hot path's provisional decision; without one, a human looks at it. */
  const json_t *prov = json_object_get(input, "provisional");
  const char *intent = json_string_value(json_object_get(prov, "intent"));
  const char *route = json_string_value(json_object_get(prov, "route"));
  const json_t *conf = json_object_get(prov, "confidence");
  return json_pack("{s:s,s:s,s:f,s:s}", "intent", intent ? intent : "unknown", "route",
                   route ? route : "human_review", "confidence",
                   json_is_number(conf) ? json_number_value(conf) : 0.0, "source", "rules");
}
