/* vd_cli_verbs: the functions behind each verb, declared in one place for the verb table.
 * Each module implements its own verbs (rules/ the `rules` and `expr` verbs, models/ `train`...);
 * they all have the vd_verb_fn signature of vd_cli.h. */
#ifndef VD_CLI_VERBS_H
#define VD_CLI_VERBS_H

#include <stdio.h>

/* models/vd_train.h */
int vd_verb_train(int argc, char **argv, FILE *out, FILE *err);
/* models/vd_bundle.h (re-stamping and checking bundle versions) */
int vd_verb_models(int argc, char **argv, FILE *out, FILE *err);

/* rules/cel_expr_verb.c (CEL, vd_cel.h) */
int vd_verb_expr(int argc, char **argv, FILE *out, FILE *err);

/* rules/rules_cli.c (rule files and schemas, vd_ruleset.h) */
int vd_verb_rules(int argc, char **argv, FILE *out, FILE *err);

/* engine/vd_service.h (the HTTP API) */
int vd_verb_serve(int argc, char **argv, FILE *out, FILE *err);

/* engine/vd_batch.h (batch scoring through the decision pipeline) */
int vd_verb_score(int argc, char **argv, FILE *out, FILE *err);

/* llm/vd_llm_cli.c (LLM jobs, vd_llm.h) */
int vd_verb_llm(int argc, char **argv, FILE *out, FILE *err);
/* llm/vd_prompts_cli.c and llm/vd_eval.c (prompt registry and golden-set evals, vd_eval.h) */
int vd_verb_prompts(int argc, char **argv, FILE *out, FILE *err);
int vd_verb_eval(int argc, char **argv, FILE *out, FILE *err);

/* engine/vd_replay.c and engine/vd_shadow.c (re-deciding logged decisions, vd_replay.h) */
int vd_verb_explain(int argc, char **argv, FILE *out, FILE *err);
int vd_verb_replay(int argc, char **argv, FILE *out, FILE *err);
int vd_verb_shadow(int argc, char **argv, FILE *out, FILE *err);

#endif
