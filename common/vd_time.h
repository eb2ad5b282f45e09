/* vd_time: clocks. */
#ifndef VD_TIME_H
#define VD_TIME_H

#include <stdint.h>

/* Nanoseconds from an arbitrary origin, never going backwards (for latencies). */
uint64_t vd_monotonic_ns(void);
/* Wall-clock time in microseconds since the Unix epoch (for timestamps). */
int64_t vd_wall_us(void);
/* Formats a wall-clock time as RFC 3339 UTC with microseconds ("2026-12-03T13:26:45.123456Z").
 * buf needs at least 32 bytes. */
void vd_format_rfc3339_us(int64_t wall_us, char *buf, unsigned size);

#endif
