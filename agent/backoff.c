/* Jittered exponential backoff for the agent's retries (registration, reconnect, outbox): the
 * policies in one table so the numbers live in one place (docs/agent.md). */
#include "agent/agent.h"

#include <string.h>

#define MS 1000ULL
#define SEC (1000 * MS)

static const struct
{
  uint64_t min_us, max_us;
  double multiplier, jitter;
} policies[] = {
  [AGENT_BACKOFF_REGISTER] = { 3 * SEC, 192 * SEC, 2.0, 0.2 },
  [AGENT_BACKOFF_RECONNECT] = { 250 * MS, 120 * SEC, 1.5, 0.2 },
  [AGENT_BACKOFF_OUTBOX] = { 1 * SEC, 30 * SEC, 2.0, 0.2 },
};

void agent_backoff_init (agent_backoff *b, enum agent_backoff_kind kind, uint64_t seed)
{
  memset (b, 0, sizeof *b);
  b->min_us = policies[kind].min_us;
  b->max_us = policies[kind].max_us;
  b->multiplier = policies[kind].multiplier;
  b->jitter = policies[kind].jitter;
  b->current_us = b->min_us;
  /* xorshift64 must not start at zero. */
  b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* A uniform double in [0, 1): xorshift64, plenty for spreading retries of many hosts apart. */
static double backoff_random (agent_backoff *b)
{
  b->rng ^= b->rng << 13;
  b->rng ^= b->rng >> 7;
  b->rng ^= b->rng << 17;
  return (double)(b->rng >> 11) / (double)(1ULL << 53);
}

uint64_t agent_backoff_next (agent_backoff *b)
{
  double nominal = (double)b->current_us;
  double factor = 1.0 + b->jitter * (2.0 * backoff_random (b) - 1.0);
  double next = nominal * b->multiplier;
  b->current_us = next > (double)b->max_us ? b->max_us : (uint64_t)next;
  return (uint64_t)(nominal * factor);
}

void agent_backoff_reset (agent_backoff *b)
{
  b->current_us = b->min_us;
}
