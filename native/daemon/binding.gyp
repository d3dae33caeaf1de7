{
  "targets": [
    {
      "target_name": "crash_handler",
      "sources": ["crash_handler.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-ldl"]
    },
    {
      "target_name": "file_lock",
      "sources": ["file_lock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
