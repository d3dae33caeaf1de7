{
  "targets": [
    {
      "target_name": "ntls-pkcs11",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_name": "ntls-pkcs11",
      "sources": ["module.c", "calls.c", "link.c", "config.c", "clientlog.c", "mechanism.c", "attribute.c", "wire.c"],
      "include_dirs": ["<!(node -p \"require('path').join(require('path').dirname(require.resolve('pkcs11js/package.json')), 'includes', 'pkcs11')\")"],
      "defines": ["NTLS_NODE=\"<!(node -p process.execPath)\""],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden", "-pthread"],
      "ldflags": ["-pthread", "-Wl,-Bsymbolic", "-Wl,-z,defs"],
      "libraries": ["-ldl"]
    }
  ]
}
