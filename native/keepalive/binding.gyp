{
  "targets": [
    {
      "target_name": "tcp_keepalive",
      "sources": ["tcp_keepalive.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
