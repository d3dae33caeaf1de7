#!/usr/bin/env node
// `ntls-client`: the client host's tools (docs/client.md). `p11-relay` runs without the other
// commands' code: libntls-pkcs11.so starts it for every program that loads the module (and p11-kit
// starts it for `remote: |ntls-client p11-relay`), often a process per signature, and loading the
// whole CLI took two thirds of its start-up (bench/module-relay-start.ts).
if (process.argv[2] === 'p11-relay') await import('./p11-relay.js');
else await import('./ntls-client-commands.js');
