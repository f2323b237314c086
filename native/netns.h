// Sockets made inside another network namespace (ambient mode: one node-level proxy serves every pod, so the
// sockets it listens and connects with must live in the pod's namespace). Plain C, defined in netns.c, for
// relay.c's upstream sockets and the netnsSocket export.
#ifndef SIDECAR_NETNS_H
#define SIDECAR_NETNS_H

// A socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) in the namespace netns_fd refers to (an fd of
// /proc/PID/ns/net or /run/netns/NAME), or in the caller's own when netns_fd is -1. The calling thread never
// changes namespace: a short-lived thread enters it, makes the socket and exits. Returns 0 with the fd in
// *out_fd, or a positive errno (left in errno too) with *syscall naming the call that failed: pthread_create,
// setns (EINVAL: not a network namespace; EBADF: not an open fd; EPERM: no CAP_SYS_ADMIN) or socket.
int netns_socket(int netns_fd, int family, int type, int* out_fd, const char** syscall);

#endif
