#define _GNU_SOURCE
#include "vd_slice.h"

#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
/* struct sched_attr of sched_setattr(2): glibc declares neither the call nor the struct. */
typedef struct sched_attr_v1 {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime; /* the slice, for SCHED_OTHER */
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
} sched_attr_v1;

static bool get_attr(sched_attr_v1 *a) {
  memset(a, 0, sizeof *a);
  return syscall(SYS_sched_getattr, 0, a, sizeof *a, 0) == 0;
}

bool vd_slice_get(uint64_t *ns) {
  sched_attr_v1 a;
  if (!get_attr(&a)) return false;
  *ns = a.sched_runtime;
  return true;
}

bool vd_slice_set(uint64_t ns) {
  sched_attr_v1 a;
  if (!get_attr(&a) || a.sched_policy != SCHED_OTHER) return false; /* leave other policies */
  a.size = sizeof a;
  a.sched_flags = 0;
  a.sched_runtime = ns;
  return syscall(SYS_sched_setattr, 0, &a, 0) == 0;
}
#else
bool vd_slice_get(uint64_t *ns) {
  (void)ns;
  return false;
}

bool vd_slice_set(uint64_t ns) {
  (void)ns;
  return false;
}
#endif
