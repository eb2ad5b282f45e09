/* vd_llm_tasks: what each LLM task is — its input checks, the prompt it sends, the output schema
 * its answer must meet, and the deterministic fallback that answers when the LLM cannot.
 *
 *   extract    {text, reference_date?} → {destinations, start_date, end_date, nights, adults,
 *              children, budget, interests}. The rules extractor (vd_extract_rules.h) runs first;
 *              the LLM is asked only for the fields it did not fill with confidence, and its
 *              answer never overrides a confident field. Fallback: the rules' fields.
 *   itinerary  {destination, start_date, end_date, travelers, interests} → {destination, days:
 *              [{day, date, activities: [{time, title, description?, interest?}]}], summary?}.
 *              Fallback: a template from the activity catalogue, marked "source": "template".
 *   classify   {text, provisional?: {intent, route, confidence}, routes?: [..], intents?: [..]}
 *              → {intent, route, confidence}. Fallback: the provisional decision (or route
 *              "human_review"), marked "source": "rules".
 *
 * Prompts come from the registry (vd_prompts.h): the active version's rendered template is the
 * user message, the system prompt asks for one JSON object meeting the output schema; jobs record
 * the prompt's id ("v1@3f2a…", version and the first 12 hex digits of its SHA-256).
 *
 * Ownership: a vd_llm_tasks is immutable after load and safe to share between threads; free with
 * vd_llm_tasks_free. Returned json_t are new references; arguments are borrowed. */
#ifndef VD_LLM_TASKS_H
#define VD_LLM_TASKS_H

#include <jansson.h>
#include <stdbool.h>

#include "vd_buf.h"
#include "vd_error.h"
#include "vd_llm.h"

typedef struct vd_llm_tasks vd_llm_tasks;

/* Loads prompts (enabled tasks only), the catalogue and the rules extractor. */
vd_llm_tasks *vd_llm_tasks_load(const vd_llm_config *cfg, vd_error *err);
void vd_llm_tasks_free(vd_llm_tasks *tasks);

/* "v1@<12 hex>" for an enabled task, "none" otherwise. */
const char *vd_llm_tasks_prompt_version(const vd_llm_tasks *tasks, vd_llm_task task);
/* The task's prompt (borrowed; NULL for a disabled task): tier, max tokens, temperature. */
typedef struct vd_prompt vd_prompt;
const vd_prompt *vd_llm_tasks_prompt(const vd_llm_tasks *tasks, vd_llm_task task);
/* The task's output schema (borrowed). */
const json_t *vd_llm_tasks_output_schema(const vd_llm_tasks *tasks, vd_llm_task task);

/* Checks an input and returns its normalised form (defaults applied, strings trimmed), or NULL with
 * err.field naming the field. today is "YYYY-MM-DD" (the default reference date). */
json_t *vd_llm_tasks_normalise(const vd_llm_tasks *tasks, vd_llm_task task, const json_t *input,
                               const char *today, vd_error *err);

/* What a job will do before any provider call. */
typedef struct vd_llm_plan {
  unsigned confident; /* extract: VD_EXTRACT_BIT of each field the rules filled with confidence */
  json_t *partial;    /* extract: the rules' fields; NULL for the other tasks */
  bool need_llm;      /* false: partial is already the whole answer */
  char *system;       /* the system prompt (heap) */
  json_t *messages;   /* [{role: "user", content}] */
} vd_llm_plan;

bool vd_llm_tasks_plan(const vd_llm_tasks *tasks, vd_llm_task task, const json_t *input,
                       vd_llm_plan *plan, vd_error *err);
void vd_llm_plan_free(vd_llm_plan *plan);

/* Turns the answer text into the task's result: extracts the JSON object (tolerating a ```json
 * fence), merges it with the plan's partial result and validates it. NULL when the answer is not
 * acceptable, with every problem described in problems (for the repair prompt and the reason). */
json_t *vd_llm_tasks_accept(const vd_llm_tasks *tasks, vd_llm_task task, const json_t *input,
                            const vd_llm_plan *plan, const char *text, vd_buf *problems);

/* The follow-up message asking the model to correct its answer. */
char *vd_llm_tasks_repair_prompt(const char *problems);

/* The deterministic result (marked with "source"), or NULL with err set when none is possible. */
json_t *vd_llm_tasks_fallback(const vd_llm_tasks *tasks, vd_llm_task task, const json_t *input,
                              const vd_llm_plan *plan, vd_error *err);
/* "rules" or "template": what handled_by says for a fallback result. */
const char *vd_llm_tasks_fallback_kind(vd_llm_task task);

#endif
