/* vd_prompts: the prompt registry — prompts as versioned files, one active version per task.
 *
 * A prompt is PROMPTS_DIR/<task>/<version>.md: a YAML header between two "---" lines, then the
 * template body (the user message) with named placeholders {{name}}:
 *
 *   ---
 *   task: extract          # extract | itinerary | classify (must match the folder)
 *   tier: small            # small | large
 *   max_tokens: 1024       # 1 .. 64000
 *   temperature: 0         # 0 .. 2, or null for the provider's default
 *   output_schema: builtin # the task's built-in JSON Schema, or an inline JSON Schema mapping
 *   ---
 *   ... {{request}} ...
 *
 * The placeholders a task provides (vd_prompt_placeholders) must each appear at least once and
 * no other name may appear: an unknown name or an unused one is a load error with file:line:col.
 * The version is the file stem ([A-Za-z0-9._-]+); the id is "<version>@<first 12 hex digits of
 * the SHA-256 of the file>" (vd_prompt_sha256 has all 64), so an edited file is a new id.
 *
 * Activation history: DATA_DIR/prompts/history.jsonl, one JSON object per line, appended under
 * an exclusive lock and fsync'ed: {at, task, action ("activate"|"rollback"), version, id, who,
 * why, previous (activate: the id active before)}. The active version is computed by replaying
 * it as a stack per task: activate pushes (the first one on top of its previous),
 * rollback pops (back to the previously active version). No entry: the config's prompt_version is
 * active.
 *
 * Ownership: a vd_prompt is immutable after load, safe to share between threads; free with
 * vd_prompt_free. Returned json_t and char* are new (caller frees); arguments are borrowed. */
#ifndef VD_PROMPTS_H
#define VD_PROMPTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"
#include "vd_llm.h"

enum { VD_PROMPT_ID_SIZE = VD_LLM_NAME_MAX + 16 };

typedef struct vd_prompt vd_prompt;

/* The placeholder names task's template must use, NULL-terminated:
 * extract {request, known_fields, missing_fields}; itinerary and classify {request}. */
const char *const *vd_prompt_placeholders(vd_llm_task task);

/* Loads and checks a prompt file. Errors carry file:line:col. */
vd_prompt *vd_prompt_load(const char *path, vd_error *err);
/* As vd_prompt_load from memory; name is the file path used in errors and for the version (its
 * stem) and task (its folder, when it has one: checked against the header). */
vd_prompt *vd_prompt_load_string(const char *text, size_t len, const char *name, vd_error *err);
void vd_prompt_free(vd_prompt *prompt);

const char *vd_prompt_version(const vd_prompt *p); /* "v2" */
const char *vd_prompt_id(const vd_prompt *p);      /* "v2@3f2a9c01b2d4" */
const char *vd_prompt_sha256(const vd_prompt *p);  /* 64 hex digits */
vd_llm_task vd_prompt_task(const vd_prompt *p);
vd_llm_tier vd_prompt_tier(const vd_prompt *p);
int vd_prompt_max_tokens(const vd_prompt *p);
double vd_prompt_temperature(const vd_prompt *p);          /* < 0: the provider's default */
const json_t *vd_prompt_output_schema(const vd_prompt *p); /* NULL: the task's built-in schema */
const char *vd_prompt_body(const vd_prompt *p);
const char *vd_prompt_text(const vd_prompt *p); /* the whole file */
/* Approximate size in tokens of the template without its values: ceil(bytes / 4), the usual
 * rule of thumb for English text with BPE tokenisers (within ~15 % for this kind of prose). */
size_t vd_prompt_token_estimate(const vd_prompt *p);

/* The body with every {{name}} replaced by vars[name] (strings). NULL (err) if one is missing. */
char *vd_prompt_render(const vd_prompt *p, const json_t *vars, vd_error *err);

/* Loads PROMPTS_DIR/<task>/<version>.md. version may also be an id "v2@<hex>", which must match
 * the file's content (else an error says the file changed). */
vd_prompt *vd_prompt_open(const char *prompts_dir, vd_llm_task task, const char *version,
                          vd_error *err);

/* Every *.md under PROMPTS_DIR/<task>/, sorted by version:
 * [{version, id, sha256, tokens, tier, max_tokens, error (string, when it does not load)}]. */
json_t *vd_prompts_list(const char *prompts_dir, vd_llm_task task, vd_error *err);

/* The task's history entries (oldest first), [] when none. NULL on a read error. */
json_t *vd_prompts_history(const char *data_dir, vd_llm_task task, vd_error *err);
/* The active version id ("v2@<hex>") from the history into version (size VD_PROMPT_ID_SIZE); false
 * and an empty string when the history names none (err is set only on a read error). */
bool vd_prompts_active(const char *data_dir, vd_llm_task task, char *version, vd_error *err);
/* Checks that the version loads, then appends an "activate" entry {.., previous: the id active
 * until now}. initial is the version active when the history is empty (the config's
 * prompt_version; may be NULL), so that the first activation can be rolled back too. who and why
 * are required. */
bool vd_prompts_activate(const char *data_dir, const char *prompts_dir, vd_llm_task task,
                         const char *version, const char *initial, const char *who, const char *why,
                         vd_error *err);
/* Returns to the previously active version (which must still load): appends a "rollback" entry
 * and writes the restored version into restored (size VD_PROMPT_ID_SIZE). */
bool vd_prompts_rollback(const char *data_dir, const char *prompts_dir, vd_llm_task task,
                         const char *who, const char *why, char *restored, vd_error *err);

#endif
