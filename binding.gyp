{
  "targets": [
    {
      "target_name": "sockopt",
      "sources": ["native/sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_c": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
