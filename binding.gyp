{
  "targets": [
    {
      "target_name": "sockopt",
      "sources": ["native/sockopt.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
