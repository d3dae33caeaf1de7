{
  "targets": [
    {
      "target_name": "ecdsa",
      "sources": ["ecdsa.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
