/* vd_llm configuration: shipped defaults and the config file's `llm:` section. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_llm.h"
#include "vd_suggest.h"

static const char *const task_names[VD_LLM_TASK_COUNT] = {"extract", "itinerary", "classify"};
static const char *const tier_names[VD_LLM_TIER_COUNT] = {"small", "large"};

const char *vd_llm_task_name(vd_llm_task task) {
  return task < VD_LLM_TASK_COUNT ? task_names[task] : "unknown";
}

bool vd_llm_task_parse(const char *name, vd_llm_task *task) {
  for (int i = 0; i < VD_LLM_TASK_COUNT; i++)
    if (strcmp(task_names[i], name) == 0) {
      *task = (vd_llm_task)i;
      return true;
    }
  return false;
}

static void copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src); }

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

static void set_tier(vd_llm_tier_config *t, const char *provider, const char *model, double in,
                     double out, int max_tokens) {
  copy(t->provider, sizeof t->provider, provider);
  copy(t->model, sizeof t->model, model);
  t->usd_per_mtok_input = in;
  t->usd_per_mtok_output = out;
  t->max_output_tokens = max_tokens;
}

void vd_llm_config_defaults(vd_llm_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  copy(cfg->data_dir, sizeof cfg->data_dir, "data");
  copy(cfg->prompts_dir, sizeof cfg->prompts_dir, "examples/prompts");
  copy(cfg->catalogue_path, sizeof cfg->catalogue_path, "examples/itineraries/catalogue.json");
  copy(cfg->gazetteer_path, sizeof cfg->gazetteer_path, "examples/triage/gazetteer.tsv");
  vd_llm_provider_config *a = &cfg->providers[0];
  copy(a->name, sizeof a->name, "anthropic");
  a->wire = VD_LLM_WIRE_ANTHROPIC;
  copy(a->base_url, sizeof a->base_url, env_or("ANTHROPIC_BASE_URL", "https://api.anthropic.com"));
  copy(a->api_key_env, sizeof a->api_key_env, "ANTHROPIC_API_KEY");
  vd_llm_provider_config *o = &cfg->providers[1];
  copy(o->name, sizeof o->name, "openai");
  o->wire = VD_LLM_WIRE_OPENAI;
  copy(o->base_url, sizeof o->base_url, env_or("OPENAI_BASE_URL", "https://api.openai.com/v1"));
  copy(o->api_key_env, sizeof o->api_key_env, "OPENAI_API_KEY");
  cfg->provider_count = 2;
  bool only_openai = !*env_or("ANTHROPIC_API_KEY", "") && *env_or("OPENAI_API_KEY", "");
  if (only_openai) {
    set_tier(&cfg->tiers[VD_LLM_TIER_SMALL], "openai", "gpt-4o-mini", 0.15, 0.60, 1024);
    set_tier(&cfg->tiers[VD_LLM_TIER_LARGE], "openai", "gpt-4o", 2.50, 10.00, 4096);
  } else {
    set_tier(&cfg->tiers[VD_LLM_TIER_SMALL], "anthropic", "claude-haiku-4-5", 1.00, 5.00, 1024);
    set_tier(&cfg->tiers[VD_LLM_TIER_LARGE], "anthropic", "claude-sonnet-4-5", 3.00, 15.00, 4096);
  }
  for (int i = 0; i < VD_LLM_TASK_COUNT; i++) {
    vd_llm_task_config *t = &cfg->tasks[i];
    t->enabled = true;
    t->allow_fallback = true;
    t->tier = i == VD_LLM_TASK_ITINERARY ? VD_LLM_TIER_LARGE : VD_LLM_TIER_SMALL;
    copy(t->prompt_version, sizeof t->prompt_version, "v1");
    t->deadline_ms = i == VD_LLM_TASK_ITINERARY ? 120000 : 30000;
    t->temperature = i == VD_LLM_TASK_ITINERARY ? 0.7 : 0.0;
  }
  cfg->queue_capacity = 1024;
  cfg->max_in_flight = 16;
  cfg->max_attempts = 4;
  cfg->backoff_base_ms = 500;
  cfg->backoff_max_ms = 20000;
  cfg->connect_timeout_ms = 5000;
  cfg->first_token_timeout_ms = 30000;
  cfg->idle_timeout_ms = 30000;
  cfg->breaker_failures = 5;
  cfg->breaker_cooldown_ms = 30000;
  cfg->cache_ttl_s = 24 * 3600;
}

/* ---- the `llm:` section ---- */

typedef struct reader {
  vd_error *err;
  char path[256];
} reader;

static bool field_error(reader *r, const char *key, const char *fmt, const char *a) {
  char field[300];
  snprintf(field, sizeof field, "%s.%s", r->path, key);
  char message[300];
  snprintf(message, sizeof message, fmt, a);
  return vd_error_field(r->err, field, "%s: %s", field, message);
}

static bool get_string(reader *r, const json_t *obj, const char *key, char *dst, size_t size) {
  const json_t *v = json_object_get(obj, key);
  if (!v) return true;
  if (!json_is_string(v)) return field_error(r, key, "expected a string%s", "");
  if (json_string_length(v) >= size) return field_error(r, key, "longer than the limit%s", "");
  copy(dst, size, json_string_value(v));
  return true;
}

static bool get_int(reader *r, const json_t *obj, const char *key, int64_t min, int64_t *dst) {
  const json_t *v = json_object_get(obj, key);
  if (!v) return true;
  if (!json_is_integer(v) || json_integer_value(v) < min) {
    char expected[64];
    snprintf(expected, sizeof expected, "an integer >= %lld", (long long)min);
    return field_error(r, key, "expected %s", expected);
  }
  *dst = json_integer_value(v);
  return true;
}

static bool get_double(reader *r, const json_t *obj, const char *key, double *dst) {
  const json_t *v = json_object_get(obj, key);
  if (!v) return true;
  if (!json_is_number(v) || json_number_value(v) < 0)
    return field_error(r, key, "expected a number >= 0%s", "");
  *dst = json_number_value(v);
  return true;
}

static bool get_bool(reader *r, const json_t *obj, const char *key, bool *dst) {
  const json_t *v = json_object_get(obj, key);
  if (!v) return true;
  if (!json_is_boolean(v)) return field_error(r, key, "expected true or false%s", "");
  *dst = json_is_true(v);
  return true;
}

static bool only_keys(reader *r, const json_t *obj, const char *const *allowed) {
  if (!json_is_object(obj))
    return vd_error_field(r->err, r->path, "%s: expected a mapping", r->path);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    bool ok = false;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, key) == 0) ok = true;
    if (!ok) {
      size_t count = 0;
      while (allowed[count]) count++;
      const char *near = vd_suggest(key, allowed, count);
      char hint[VD_LLM_NAME_MAX + 32] = "";
      if (near) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", near);
      return field_error(r, key, "unknown key%s", hint);
    }
  }
  return true;
}

static void enter(reader *r, const char *base, const char *key) {
  snprintf(r->path, sizeof r->path, "%s.%s", base, key);
}

static bool read_providers(vd_llm_config *cfg, reader *r, const json_t *providers) {
  static const char *const keys[] = {"wire", "base_url", "api_key_env", "key_optional", NULL};
  if (!json_is_object(providers))
    return vd_error_field(r->err, "llm.providers", "llm.providers: expected a mapping");
  const char *name;
  json_t *p;
  json_object_foreach((json_t *)providers, name, p) {
    enter(r, "llm.providers", name);
    if (!only_keys(r, p, keys)) return false;
    size_t i = 0;
    while (i < cfg->provider_count && strcmp(cfg->providers[i].name, name) != 0) i++;
    if (i == cfg->provider_count) {
      if (i == VD_LLM_MAX_PROVIDERS) return field_error(r, "", "more than %s providers", "4");
      memset(&cfg->providers[i], 0, sizeof cfg->providers[i]);
      copy(cfg->providers[i].name, sizeof cfg->providers[i].name, name);
      cfg->provider_count++;
    }
    vd_llm_provider_config *pc = &cfg->providers[i];
    char wire[32] = "";
    if (!get_string(r, p, "wire", wire, sizeof wire)) return false;
    if (wire[0] && !vd_llm_wire_parse(wire, &pc->wire))
      return field_error(r, "wire", "expected anthropic or openai, got \"%s\"", wire);
    if (!get_string(r, p, "base_url", pc->base_url, sizeof pc->base_url) ||
        !get_string(r, p, "api_key_env", pc->api_key_env, sizeof pc->api_key_env) ||
        !get_bool(r, p, "key_optional", &pc->key_optional))
      return false;
    if (!pc->base_url[0]) return field_error(r, "base_url", "required for a new provider%s", "");
  }
  return true;
}

static bool read_tiers(vd_llm_config *cfg, reader *r, const json_t *tiers) {
  static const char *const keys[] = {
      "provider", "model", "usd_per_mtok_input", "usd_per_mtok_output", "max_output_tokens", NULL};
  snprintf(r->path, sizeof r->path, "llm.tiers");
  if (!only_keys(r, tiers, (const char *const[]){"small", "large", NULL})) return false;
  for (int i = 0; i < VD_LLM_TIER_COUNT; i++) {
    const json_t *t = json_object_get(tiers, tier_names[i]);
    if (!t) continue;
    enter(r, "llm.tiers", tier_names[i]);
    if (!only_keys(r, t, keys)) return false;
    vd_llm_tier_config *tc = &cfg->tiers[i];
    int64_t max_tokens = tc->max_output_tokens;
    if (!get_string(r, t, "provider", tc->provider, sizeof tc->provider) ||
        !get_string(r, t, "model", tc->model, sizeof tc->model) ||
        !get_double(r, t, "usd_per_mtok_input", &tc->usd_per_mtok_input) ||
        !get_double(r, t, "usd_per_mtok_output", &tc->usd_per_mtok_output) ||
        !get_int(r, t, "max_output_tokens", 1, &max_tokens))
      return false;
    tc->max_output_tokens = (int)max_tokens;
  }
  return true;
}

static bool read_tasks(vd_llm_config *cfg, reader *r, const json_t *tasks) {
  static const char *const keys[] = {"enabled",     "allow_fallback", "tier", "prompt_version",
                                     "deadline_ms", "temperature",    NULL};
  snprintf(r->path, sizeof r->path, "llm.tasks");
  if (!only_keys(r, tasks, (const char *const[]){"extract", "itinerary", "classify", NULL}))
    return false;
  for (int i = 0; i < VD_LLM_TASK_COUNT; i++) {
    const json_t *t = json_object_get(tasks, task_names[i]);
    if (!t) continue;
    enter(r, "llm.tasks", task_names[i]);
    if (!only_keys(r, t, keys)) return false;
    vd_llm_task_config *tc = &cfg->tasks[i];
    char tier[32] = "";
    if (!get_bool(r, t, "enabled", &tc->enabled) ||
        !get_bool(r, t, "allow_fallback", &tc->allow_fallback) ||
        !get_string(r, t, "tier", tier, sizeof tier) ||
        !get_string(r, t, "prompt_version", tc->prompt_version, sizeof tc->prompt_version) ||
        !get_int(r, t, "deadline_ms", 1, &tc->deadline_ms) ||
        !get_double(r, t, "temperature", &tc->temperature))
      return false;
    if (tier[0]) {
      if (strcmp(tier, "small") == 0)
        tc->tier = VD_LLM_TIER_SMALL;
      else if (strcmp(tier, "large") == 0)
        tc->tier = VD_LLM_TIER_LARGE;
      else
        return field_error(r, "tier", "expected small or large, got \"%s\"", tier);
    }
  }
  return true;
}

static bool read_budgets(vd_llm_config *cfg, reader *r, const json_t *budgets) {
  snprintf(r->path, sizeof r->path, "llm.budgets");
  if (!json_is_object(budgets))
    return vd_error_field(r->err, r->path, "%s: expected a mapping of feature: daily_usd", r->path);
  cfg->budget_count = 0;
  const char *feature;
  json_t *v;
  json_object_foreach((json_t *)budgets, feature, v) {
    if (cfg->budget_count == VD_LLM_MAX_BUDGETS)
      return field_error(r, feature, "more than %s budgets", "16");
    vd_llm_budget *b = &cfg->budgets[cfg->budget_count];
    if (strlen(feature) >= sizeof b->feature)
      return field_error(r, feature, "feature name too long%s", "");
    copy(b->feature, sizeof b->feature, feature);
    if (!get_double(r, budgets, feature, &b->daily_usd)) return false;
    cfg->budget_count++;
  }
  return true;
}

bool vd_llm_config_from_json(vd_llm_config *cfg, const json_t *section, vd_error *err) {
  static const char *const keys[] = {"data_dir",
                                     "prompts_dir",
                                     "catalogue",
                                     "gazetteer",
                                     "queue_capacity",
                                     "max_in_flight",
                                     "max_attempts",
                                     "backoff_base_ms",
                                     "backoff_max_ms",
                                     "connect_timeout_ms",
                                     "first_token_timeout_ms",
                                     "idle_timeout_ms",
                                     "breaker_failures",
                                     "breaker_cooldown_ms",
                                     "cache_ttl_s",
                                     "providers",
                                     "tiers",
                                     "tasks",
                                     "budgets",
                                     NULL};
  reader r = {.err = err, .path = "llm"};
  if (!only_keys(&r, section, keys)) return false;
  int64_t queue = (int64_t)cfg->queue_capacity, in_flight = cfg->max_in_flight,
          attempts = cfg->max_attempts, breaker = cfg->breaker_failures;
  if (!get_string(&r, section, "data_dir", cfg->data_dir, sizeof cfg->data_dir) ||
      !get_string(&r, section, "prompts_dir", cfg->prompts_dir, sizeof cfg->prompts_dir) ||
      !get_string(&r, section, "catalogue", cfg->catalogue_path, sizeof cfg->catalogue_path) ||
      !get_string(&r, section, "gazetteer", cfg->gazetteer_path, sizeof cfg->gazetteer_path) ||
      !get_int(&r, section, "queue_capacity", 1, &queue) ||
      !get_int(&r, section, "max_in_flight", 1, &in_flight) ||
      !get_int(&r, section, "max_attempts", 1, &attempts) ||
      !get_int(&r, section, "backoff_base_ms", 0, &cfg->backoff_base_ms) ||
      !get_int(&r, section, "backoff_max_ms", 0, &cfg->backoff_max_ms) ||
      !get_int(&r, section, "connect_timeout_ms", 1, &cfg->connect_timeout_ms) ||
      !get_int(&r, section, "first_token_timeout_ms", 1, &cfg->first_token_timeout_ms) ||
      !get_int(&r, section, "idle_timeout_ms", 1, &cfg->idle_timeout_ms) ||
      !get_int(&r, section, "breaker_failures", 1, &breaker) ||
      !get_int(&r, section, "breaker_cooldown_ms", 0, &cfg->breaker_cooldown_ms) ||
      !get_int(&r, section, "cache_ttl_s", 0, &cfg->cache_ttl_s))
    return false;
  cfg->queue_capacity = (size_t)queue;
  cfg->max_in_flight = (int)in_flight;
  cfg->max_attempts = (int)attempts;
  cfg->breaker_failures = (int)breaker;
  const json_t *v;
  if ((v = json_object_get(section, "providers")) && !read_providers(cfg, &r, v)) return false;
  if ((v = json_object_get(section, "tiers")) && !read_tiers(cfg, &r, v)) return false;
  if ((v = json_object_get(section, "tasks")) && !read_tasks(cfg, &r, v)) return false;
  if ((v = json_object_get(section, "budgets")) && !read_budgets(cfg, &r, v)) return false;
  for (int i = 0; i < VD_LLM_TIER_COUNT; i++) {
    bool found = false;
    for (size_t p = 0; p < cfg->provider_count; p++)
      if (strcmp(cfg->providers[p].name, cfg->tiers[i].provider) == 0) found = true;
    if (!found) {
      char field[64];
      snprintf(field, sizeof field, "llm.tiers.%s.provider", tier_names[i]);
      return vd_error_field(err, field, "%s: no provider named \"%s\"", field,
                            cfg->tiers[i].provider);
    }
  }
  return true;
}
