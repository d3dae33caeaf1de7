// `ntls-client p11-relay` alone: the program with this one command, as ntls-client.ts runs it
// (the same name, version, options, examples and usage errors as in the whole CLI), without
// loading the other commands' code.
import { clientProgram, runProgram } from './client-program.js';
import { P11_RELAY_EXAMPLES, p11RelayCommand } from './relay-commands.js';

const program = clientProgram();
p11RelayCommand(program);
await runProgram(program, P11_RELAY_EXAMPLES);
