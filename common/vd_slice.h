/* vd_slice: the calling thread's scheduler time slice, on Linux's EEVDF scheduler (6.12 and later:
 * sched_attr.sched_runtime of a SCHED_OTHER thread, 0.1-100 ms; older kernels ignore it). Threads
 * created afterwards inherit it.
 *
 * Why: a thread woken while another runs waits until the running one's slice lets the scheduler
 * choose again — up to the default 1.4 ms on 2 cores. A request thread with a short slice is
 * chosen within about its own slice, so short requests are not queued behind long-running work.
 * No privilege is needed. */
#ifndef VD_SLICE_H
#define VD_SLICE_H

#include <stdbool.h>
#include <stdint.h>

/* The calling thread's slice in ns (the kernel's default when never set). False where the
 * system has no sched_getattr. */
bool vd_slice_get(uint64_t *ns);

/* Sets the calling thread's slice (ns; 0: the kernel's default). False where it cannot. */
bool vd_slice_set(uint64_t ns);

#endif
