/* vd_eval: golden-set evaluation of an LLM task's prompt version, and the regression gate.
 *
 * `verdict eval --task T --golden FILE.jsonl --prompt VERSION [--baseline VERSION] ...` runs every
 * golden case through the production job service (vd_llm: validation, one repair, fallback) in a
 * fresh temporary data folder (no cache, its own ledger), scores each result deterministically
 * and writes report.json and report.md. See the README section "Prompts and evals".
 *
 * Golden files (JSON Lines, errors name file:line):
 *   extract    {id, slice, reference_date, text, expected: {the eight fields}}
 *              (the extraction golden set's format; scored with vd_extract_field_equal)
 *   classify   {id, slice, input: {text, provisional?, intents?, routes?}, expected: {intent,
 * route}} itinerary  {id, slice, input: {destination, start_date, end_date, travelers?,
 * interests?}, expected: {max_activities_per_day?}} — checks: schema, days, dates, constraints
 *               (every requested interest served by an activity, the destination kept, at most
 *               max_activities_per_day activities a day)
 *
 * Ownership: returned json_t are new references; arguments are borrowed. */
#ifndef VD_EVAL_H
#define VD_EVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"
#include "vd_llm.h"

/* Wilson score interval for passed/cases at the given two-sided confidence (0.95). [0, 1] when
 * cases is 0. */
void vd_eval_wilson(size_t passed, size_t cases, double confidence, double *low, double *high);
/* Two-sided Fisher's exact test p-value for the 2x2 table (a_pass, a_n - a_pass; b_pass,
 * b_n - b_pass): the probability of a table at most as likely as the observed one. */
double vd_eval_fisher_p(size_t a_pass, size_t a_n, size_t b_pass, size_t b_n);

/* The golden cases of a file as [{id, slice, input, expected}] (extract rows are turned into
 * input {text, reference_date}). NULL with err (file:line) on a bad file or row. */
json_t *vd_eval_load_golden(vd_llm_task task, const char *path, vd_error *err);

/* Scores one job result against a case: {pass, fields: {name: bool}, diff: {name: {expected,
 * actual}}}. result may be NULL (the job failed: every field fails). */
json_t *vd_eval_score(vd_llm_task task, const json_t *output_schema, const json_t *golden_case,
                      const json_t *result);

/* The verbs: vd_verb_eval (vd_eval.c) and vd_verb_prompts (vd_prompts_cli.c), declared in
 * engine/vd_cli_verbs.h. */

#endif
