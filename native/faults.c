// The fault switch of native/faults.h; an empty unit outside the sanitizer build.
#include "faults.h"

#ifdef SIDECAR_LAB_FAULTS
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char* const names[FAULT_KINDS] = {
    "splice_einval", "rw_alloc",  "cmd_alloc",  "netns_thread", "netns_setns", "fds_alloc",
    "fds_result",    "event_alloc", "tsfn_call", "epoll_wait",   "read_alloc", "send_short",
    "accept_alloc",  "accept_external", "accept_batch"};
static uint64_t at[FAULT_KINDS], seen[FAULT_KINDS];

void relay_faults_init(void) {
  const char* spec = getenv("SIDECAR_LAB_FAULTS");
  for (int k = 0; k < FAULT_KINDS; k++) {
    const char* p = spec ? strstr(spec, names[k]) : NULL;
    size_t len = strlen(names[k]);
    // Atomic: faultsReset() may run while the relay thread counts its own kinds.
    __atomic_store_n(&at[k], p && p[len] == '=' ? strtoull(p + len + 1, NULL, 10) : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&seen[k], 0, __ATOMIC_RELAXED);
  }
}

bool relay_fault(enum fault_kind kind) {
  // Kinds are counted on one thread at a time (the relay thread; the JS thread for commands and netns threads;
  // a netns_socket thread, which the JS thread joins, for setns).
  uint64_t n = __atomic_add_fetch(&seen[kind], 1, __ATOMIC_RELAXED);
  uint64_t when = __atomic_load_n(&at[kind], __ATOMIC_RELAXED);
  return when != 0 && n == when;
}
#else
typedef int relay_faults_unused;  // ISO C wants a unit to declare something
#endif
