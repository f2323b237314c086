{
  "targets": [
    {
      "target_name": "sockopt",
      "sources": ["native/sockopt.c", "native/relay.c", "native/relay-pump.c", "native/relay-napi.c", "native/napi-util.c", "native/netns.c", "native/unix-fds.c", "native/unix-wait.c", "native/faults.c", "native/acceptor.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-pthread"],
      "ldflags": ["-pthread"],
      "cflags_c": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
