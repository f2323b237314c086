// Fault injection, compiled only into the sanitizer build (scripts/test-asan.sh defines SIDECAR_LAB_FAULTS):
// failure paths that real traffic reaches only by luck (splice refusing a socket mid-stream, an allocation
// failing, no thread to be had) are driven on purpose by test/native/relay-faults.test.ts and
// test/native/netns-faults.test.ts and test/native/acceptor.test.ts. Without the define FAULT() is the
// constant false and none of this is in the addon.
// SIDECAR_LAB_FAULTS="splice_einval=N,rw_alloc=N,cmd_alloc=N,netns_thread=N,netns_setns=N,fds_alloc=N,
// fds_result=N,event_alloc=N,tsfn_call=N,epoll_wait=N,read_alloc=N,send_short=N,accept_alloc=N,
// accept_external=N,accept_batch=N", read at each relay_engine_start, faultsReset()
// and unixFdsFaults() (counters start over): the Nth call of that kind fails, once.
#ifndef SIDECAR_FAULTS_H
#define SIDECAR_FAULTS_H
#include <stdbool.h>

enum fault_kind {
  FAULT_SPLICE_EINVAL,  // a splice from a pipe to a socket fails with EINVAL
  FAULT_RW_ALLOC,       // to_rw()'s buffer cannot be allocated (ENOMEM)
  FAULT_CMD_ALLOC,      // a command for the relay thread cannot be allocated (ENOMEM)
  FAULT_NETNS_THREAD,   // netns_socket's thread cannot be created (pthread_create: EAGAIN)
  FAULT_NETNS_SETNS,    // netns_socket's thread cannot enter the namespace (setns: EPERM, as without CAP_SYS_ADMIN)
  FAULT_FDS_ALLOC,      // unix-wait.c: a recv or accept waiter cannot be allocated (ENOMEM)
  FAULT_FDS_RESULT,     // unix-wait.c: a received message or accepted fd cannot be handed to JS (its fds closed)
  FAULT_EVENT_ALLOC,    // the round's event array cannot grow (ENOMEM)
  FAULT_TSFN_CALL,      // napi_call_threadsafe_function refuses a batch
  FAULT_EPOLL_WAIT,     // epoll_wait fails (EBADF)
  FAULT_READ_ALLOC,     // read_in()'s (or move_small()'s) read/write buffer cannot be allocated (ENOMEM)
  FAULT_SEND_SHORT,     // move_small()'s send takes one byte only, as into a full socket
  FAULT_ACCEPT_ALLOC,   // acceptor.c: acceptorStart cannot allocate its acceptor (ENOMEM)
  FAULT_ACCEPT_EXTERNAL,  // acceptor.c: acceptorStart cannot make its handle (napi_create_external)
  FAULT_ACCEPT_BATCH,   // acceptor.c: an accepted connection's entry cannot be made (its round's fds closed)
  FAULT_KINDS
};

#ifdef SIDECAR_LAB_FAULTS
void relay_faults_init(void);
bool relay_fault(enum fault_kind kind);
#define FAULT(kind) relay_fault(kind)
#define FAULTS_INIT() relay_faults_init()
#define FAULTS_BUILD true
#else
#define FAULT(kind) false
#define FAULTS_INIT() ((void)0)
#define FAULTS_BUILD false
#endif

#endif
