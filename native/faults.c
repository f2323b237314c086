// The fault switch of native/faults.h; an empty unit outside the sanitizer build.
#include "faults.h"

#ifdef SIDECAR_LAB_FAULTS
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char* const names[FAULT_KINDS] = {"splice_einval", "rw_alloc", "cmd_alloc", "event_alloc", "tsfn_call", "epoll_wait", "read_alloc"};
static uint64_t at[FAULT_KINDS], seen[FAULT_KINDS];

void relay_faults_init(void) {
  const char* spec = getenv("SIDECAR_LAB_FAULTS");
  for (int k = 0; k < FAULT_KINDS; k++) {
    seen[k] = 0;
    at[k] = 0;
    const char* p = spec ? strstr(spec, names[k]) : NULL;
    size_t len = strlen(names[k]);
    if (p && p[len] == '=') at[k] = strtoull(p + len + 1, NULL, 10);
  }
}

bool relay_fault(enum fault_kind kind) {
  // Kinds are counted on one thread each (the relay thread, or the JS thread for commands).
  uint64_t n = __atomic_add_fetch(&seen[kind], 1, __ATOMIC_RELAXED);
  return at[kind] != 0 && n == at[kind];
}
#else
typedef int relay_faults_unused;  // ISO C wants a unit to declare something
#endif
