/* Shared set-up for the LLM job tests: a fresh data folder, a fake provider and a config that
 * points every tier at it. */
#ifndef SUPPORT_LLM_ENV_H
#define SUPPORT_LLM_ENV_H

#include "vd_fake_provider.h"
#include "vd_llm.h"

typedef struct llm_env {
  fake_provider *fake;
  vd_llm_config cfg;
  char dir[256];
} llm_env;

#define LLM_ENV_KEY_VAR "VERDICT_TEST_FAKE_KEY"
#define LLM_ENV_KEY "sk-test-0123456789"

/* Starts the fake and fills env->cfg: one provider "fake" on the given wire, small tier
 * "fake-small" at $1/$5 per Mtok, large tier "fake-large" at $3/$15, fast backoff (20..200 ms),
 * 2 s first-token and idle timeouts, breaker after 3 failures, fixed jitter seed. */
void llm_env_init(llm_env *env, vd_llm_wire wire);
void llm_env_done(llm_env *env);

/* Submits a job and waits up to 20 s for it to end; returns its state JSON (caller decrefs). */
json_t *llm_env_run(vd_llm *llm, vd_llm_task task, const char *input_json, const char *feature);

/* All of a job's events so far (waits for "done" up to 20 s). */
json_t *llm_env_events(vd_llm *llm, const char *job_id);
/* How many events of that name, and the token texts joined. */
int llm_env_count(const json_t *events, const char *name);
char *llm_env_tokens(const json_t *events);

/* A valid itinerary answer for the standard two-day Kyoto trip. */
extern const char llm_env_kyoto_trip[];
extern const char llm_env_kyoto_answer[];

#endif
