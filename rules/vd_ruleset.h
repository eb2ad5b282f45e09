/* vd_ruleset: rule files — loading, type-checking, their own tests, and evaluation.
 *
 * A rule file (see README "Rule files") names a schema, a default score, rules and tests:
 *
 *   ruleset: promotions
 *   schema: schema.yaml          # a path relative to this file, or an inline mapping
 *   default_score: 0.0
 *   rules:
 *     - id: opted-out
 *       description: Customers who opted out of marketing get nothing.
 *       stage: before_model      # or after_model
 *       priority: 100            # optional EVALUATION ORDER: higher first, default 0
 *       when: subject.marketing_opt_out
 *       then: { deny: "Customer opted out of marketing e-mail" }
 *   tests:
 *     - name: opted-out customers are denied
 *       input: { subject: {...}, candidate: {...}, score: { uplift: 0.01 } }
 *       expect: { eligible: false, fired: [opted-out] }
 *
 * `then` holds exactly one action: deny: TEXT, allow: TEXT, adjust: NUMBER, route: QUEUE,
 * priority: LEVEL (the triage priority ACTION, unrelated to the rule-level evaluation order),
 * escalate: TASK.
 *
 * Combination (README "How rules combine"): within a stage, rules run by evaluation order
 * (rule-level `priority` descending, then file order). A matching deny settles the candidate at
 * once (later rules are not evaluated; deny beats allow, route and everything else). The first
 * matching allow / route / priority / escalate sets that value; later matches of the same kind
 * are recorded but change nothing. adjust values of all matching rules add up (both stages);
 * each is at most VD_RULES_ADJUST_MAX in magnitude (a larger one is refused at load), so no sum
 * of them can make a score non-finite.
 * An evaluation error fails closed: a deny rule whose `when` errors counts as matched (the
 * candidate is denied, the error is in the trace); any other rule whose `when` errors counts as
 * not matched. Settled after before_model (deny, allow or route): the model and after_model are
 * skipped. after_model rules read score.*; they run only for candidates the model scored.
 *
 * Ownership and threads: vd_ruleset_load* returns a ruleset with one reference; retain/free count
 * references (thread-safe). A loaded ruleset is immutable: any number of threads may evaluate it
 * at once, each with its own vd_rules_frame and vd_rules_outcome (caller-owned, reusable, no heap
 * allocation per evaluation once created).
 */
#ifndef VD_RULESET_H
#define VD_RULESET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"
#include "vd_json_write.h"
#include "vd_schema.h"

typedef struct vd_ruleset vd_ruleset;

typedef enum vd_stage { VD_STAGE_BEFORE_MODEL, VD_STAGE_AFTER_MODEL } vd_stage;

typedef enum vd_action {
  VD_ACTION_DENY,
  VD_ACTION_ALLOW,
  VD_ACTION_ADJUST,
  VD_ACTION_ROUTE,
  VD_ACTION_PRIORITY, /* the triage priority action (`then: {priority: urgent}`) */
  VD_ACTION_ESCALATE,
} vd_action;

/* The largest |adjust| a rule may take: far beyond any ranking shift (an uplift is within ±1),
 * and small enough that the adjustments of any rule file add up to a finite score. */
enum { VD_RULES_ADJUST_MAX = 1000000 };

enum {
  /* Load without running the file's own tests (for `verdict rules test`, which runs and reports
   * them itself). A ruleset that serves decisions is always loaded with its tests run. */
  VD_RULESET_SKIP_TESTS = 1u << 0,
};

/* Loads, type-checks and tests a rule file (and the schema it names). On any mistake returns NULL
 * and appends every error found (file:line:col inside the file, also for errors inside a `when`
 * expression) to diags (may be NULL). A file whose own tests fail is refused. */
vd_ruleset *vd_ruleset_load(const char *path, vd_diags *diags);
vd_ruleset *vd_ruleset_load_flags(const char *path, unsigned flags, vd_diags *diags);
/* From text; `name` is the file name in positions; a relative `schema:` path is resolved against
 * base_dir (NULL: the current directory). */
vd_ruleset *vd_ruleset_load_string(const char *text, size_t len, const char *name,
                                   const char *base_dir, unsigned flags, vd_diags *diags);
vd_ruleset *vd_ruleset_retain(vd_ruleset *ruleset);
void vd_ruleset_free(vd_ruleset *ruleset);

const char *vd_ruleset_name(const vd_ruleset *ruleset);
/* SHA-256 (hex) of the canonical form. */
const char *vd_ruleset_version(const vd_ruleset *ruleset);
/* The canonical form (borrowed, NUL-terminated compact JSON with sorted keys and the schema
 * inlined). It is itself a loadable rule file, so a stored version can be loaded back for replay
 * with vd_ruleset_load_string. */
const char *vd_ruleset_canonical(const vd_ruleset *ruleset);
double vd_ruleset_default_score(const vd_ruleset *ruleset);
/* The schema (borrowed; retain it to keep it longer than the ruleset). */
const vd_schema *vd_ruleset_schema(const vd_ruleset *ruleset);

/* Rules in evaluation order (stage by stage: all before_model rules, then after_model). */
size_t vd_ruleset_rule_count(const vd_ruleset *ruleset);
const char *vd_ruleset_rule_id(const vd_ruleset *ruleset, size_t index);
const char *vd_ruleset_rule_description(const vd_ruleset *ruleset, size_t index);
vd_stage vd_ruleset_rule_stage(const vd_ruleset *ruleset, size_t index);
vd_action vd_ruleset_rule_action(const vd_ruleset *ruleset, size_t index);
/* The action's argument as JSON (borrowed): a string, or a number for adjust. */
const json_t *vd_ruleset_rule_argument(const vd_ruleset *ruleset, size_t index);
const char *vd_ruleset_rule_when(const vd_ruleset *ruleset, size_t index);
/* True when any rule of the stage reads a candidate.* field (otherwise the stage's outcome is the
 * same for every candidate of a request and may be computed once). */
bool vd_ruleset_stage_reads_candidate(const vd_ruleset *ruleset, vd_stage stage);
/* The request fields rule `index` may read (schema paths such as "subject.recency"; score.*
 * variables are not request fields and are left out): writes up to max borrowed names into
 * fields, returns how many there are. */
size_t vd_ruleset_rule_fields(const vd_ruleset *ruleset, size_t index, const char **fields,
                              size_t max);

const char *vd_stage_name(vd_stage stage);    /* "before_model" */
const char *vd_action_name(vd_action action); /* "deny" */

/* ---- Evaluation ---------------------------------------------------------------------------- */

/* The model's outputs, read by after_model rules as score.p_treatment, score.p_control,
 * score.uplift, score.margin, score.value (the ranking score), score.confidence and score.intent
 * (triage). The strings are borrowed for the frame's use. */
typedef struct vd_rules_scores {
  double p_treatment, p_control, uplift, margin, value, confidence;
  const char *intent; /* NULL: absent */
} vd_rules_scores;

/* A frame holds the field values of one request and one candidate, ready for evaluation.
 * Create once per thread (or per request) and rebind; strings are borrowed from the bound JSON,
 * which must outlive the frame's use and the outcomes evaluated from it. */
typedef struct vd_rules_frame vd_rules_frame;
vd_rules_frame *vd_rules_frame_new(const vd_ruleset *ruleset);
void vd_rules_frame_free(vd_rules_frame *frame);
/* Binds subject.* and context.* from a NORMALISED request (vd_schema_validate's output). Clears
 * candidate and scores. Rules that read only subject.* and context.* are then evaluated once and
 * their results reused for every candidate until the next bind_request (so always rebind when
 * the request changes; never modify a bound request in place). */
bool vd_rules_frame_bind_request(vd_rules_frame *frame, const json_t *request, vd_error *err);
/* Binds candidate.* from one candidate object of a normalised request. Clears scores. */
bool vd_rules_frame_bind_candidate(vd_rules_frame *frame, const json_t *candidate, vd_error *err);
/* Binds score.* for after_model (copies the numbers; intent is borrowed). */
void vd_rules_frame_bind_scores(vd_rules_frame *frame, const vd_rules_scores *scores);

typedef enum vd_rules_decision {
  VD_DECISION_OPEN,  /* no rule decided: the model (or default_score) decides */
  VD_DECISION_ALLOW, /* eligible by rule */
  VD_DECISION_DENY,  /* not eligible */
} vd_rules_decision;

typedef enum vd_rule_result {
  VD_RULE_NOT_MATCHED,
  VD_RULE_MATCHED,
  VD_RULE_ERROR, /* `when` failed to evaluate; deny rules then act as matched (fail closed) */
} vd_rule_result;

/* One candidate's rule outcome, accumulated over its stages. Caller-owned: create once, reset per
 * candidate, reuse. */
typedef struct vd_rules_outcome vd_rules_outcome;
vd_rules_outcome *vd_rules_outcome_new(const vd_ruleset *ruleset);
void vd_rules_outcome_free(vd_rules_outcome *outcome);
void vd_rules_outcome_reset(vd_rules_outcome *outcome);

/* Evaluates every rule of `stage` for the frame's request and candidate into outcome (appending
 * to what earlier stages recorded). Evaluation errors inside a rule are not failures: they are
 * recorded and combined as described above. Returns false only on misuse (wrong ruleset, stage
 * run twice, after_model without scores), with err set. Does not allocate. */
bool vd_ruleset_eval_stage(const vd_ruleset *ruleset, vd_rules_frame *frame, vd_stage stage,
                           vd_rules_outcome *outcome, vd_error *err);

vd_rules_decision vd_rules_outcome_decision(const vd_rules_outcome *outcome);
/* True when deny, allow or route decided: skip the model and after_model. */
bool vd_rules_outcome_settled(const vd_rules_outcome *outcome);
/* The rule that set the decision (deny/allow), and its text; NULL when open. */
const char *vd_rules_outcome_decided_by(const vd_rules_outcome *outcome);
const char *vd_rules_outcome_reason(const vd_rules_outcome *outcome);
/* Sum of the matching adjust rules (0 when none). */
double vd_rules_outcome_adjust(const vd_rules_outcome *outcome);
/* The first matching route / priority / escalate value and the rule that set it (NULL: none). */
const char *vd_rules_outcome_value(const vd_rules_outcome *outcome, vd_action action,
                                   const char **rule_id);
/* How many rules were evaluated, how many matched, how many had evaluation errors. */
size_t vd_rules_outcome_evaluated(const vd_rules_outcome *outcome);
size_t vd_rules_outcome_matched(const vd_rules_outcome *outcome);
size_t vd_rules_outcome_errors(const vd_rules_outcome *outcome);
/* Ids of the matched rules in evaluation order, into ids[0..max); returns the total count. */
size_t vd_rules_outcome_fired(const vd_rules_outcome *outcome, const char **ids, size_t max);

/* The outcome for the trace (new reference):
 *   {"decision": "deny"|"allow"|"open", "decided_by": ID|null, "reason": TEXT|null,
 *    "adjust": 0.25, "route": ..., "priority": ..., "escalate": ...,   (present when set)
 *    "rules": [{"id", "stage", "action", "matched": bool, "error": TEXT (when errored),
 *               "read": {"subject.recency": 3, ...}}]}                   (every rule evaluated)
 */
json_t *vd_rules_outcome_to_json(const vd_rules_outcome *outcome);
/* The same document written through an emitter (text on the decision's hot path, no tree). */
void vd_rules_outcome_write(const vd_rules_outcome *outcome, vd_json_emit *e);

/* ---- The file's own tests ------------------------------------------------------------------ */

typedef struct vd_ruleset_test_result {
  const char *name; /* borrowed from the ruleset */
  bool passed;
  char difference[VD_ERROR_MESSAGE_MAX]; /* on failure: what differed, e.g.
                                            "fired: expected [opted-out], got []" */
} vd_ruleset_test_result;

size_t vd_ruleset_test_count(const vd_ruleset *ruleset);
/* Runs test `index`: validates its input, evaluates before_model, then after_model when the test
 * gives `score` and the candidate is not settled, and compares with `expect`. */
void vd_ruleset_run_test(const vd_ruleset *ruleset, size_t index, vd_ruleset_test_result *result);

/* ---- CLI verbs (declared in engine/vd_cli_verbs.h too) ------------------------------------- */
int vd_verb_rules(int argc, char **argv, FILE *out, FILE *err);

#endif
