/* Time sources and the RFC 3339 timestamps used in logs, state files and the ECS API. */
#ifndef BERTH_LIB_CLOCK_H
#define BERTH_LIB_CLOCK_H

#include <stdint.h>

#define BCLOCK_RFC3339_LEN 40

int64_t bclock_mono_ns (void);
int64_t bclock_real_ns (void);

/* "2026-11-22T14:35:00.123456789Z" (UTC, nanoseconds). */
void bclock_rfc3339 (int64_t real_ns, char out[BCLOCK_RFC3339_LEN]);

/* Parses the format above (fraction optional, 'Z' or +hh:mm offset); 0 or -1. */
int bclock_parse_rfc3339 (const char *s, int64_t *real_ns);

#endif
