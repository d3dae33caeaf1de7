// An example for every `ntls` subcommand, shown at the end of its --help (test/operator/cli-basics.test.ts
// checks that each has one).
import type { Command } from 'commander';

const H = '--home /srv/ntls';

export const EXAMPLES: Record<string, string[]> = {
  'start': [`ntls start ${H}`, `ntls start ${H} --port 1792 --bind 0.0.0.0 --quiet`],
  'stop': [`ntls stop ${H}`],
  'status': [`ntls status ${H}`, `ntls status --json ${H}`],
  'logs explain': ['ntls logs explain /srv/ntls/logs/lunalogs --brief'],
  'logs tail': [`ntls logs tail -n 50 ${H}`, `ntls logs tail -f --client app1 ${H}`],
  'logs check': [`ntls logs check ${H}`, `ntls logs check --rotated --json ${H}`],
  'logs audit': [`ntls logs audit ${H}`, `ntls logs audit --verify ${H}`],
  'client register': [`ntls client register --client app1 --cert app1.pem --hostname 10.0.0.7 ${H}`],
  'client renew': [`ntls client renew --client app1 --cert app1-new.pem ${H}`],
  'client list': [`ntls client list ${H}`],
  'client show': [`ntls client show --client app1 ${H}`],
  'client fingerprint': [`ntls client fingerprint --client app1 ${H}`],
  'client hostip': [`ntls client hostip --client app1 --hostname 10.0.0.8 ${H}`],
  'client delete': [`ntls client delete --client app1 --force ${H}`],
  'client assign-partition': [`ntls client assign-partition --client app1 --partition payments ${H}`],
  'client revoke-partition': [`ntls client revoke-partition --client app1 --partition payments ${H}`],
  'partition create': [`ntls partition create --name payments ${H}`, `ntls partition create --name payments --so-pin 'so-secret-1' ${H}`],
  'partition list': [`ntls partition list ${H}`],
  'partition show': [`ntls partition show --partition payments ${H}`, `ntls partition show --partition 0 ${H}    # a name first, then a serial`],
  'partition delete': [`ntls partition delete --partition payments --force ${H}`],
  'partition policy': [`ntls partition policy ${H}`, `ntls partition policy --partition payments --legacy-rsa on ${H}`],
  'store migrate': [`ntls store migrate --to postgres --url postgresql://ntls@db1/ntls ${H}`, `ntls store migrate --to sqlite ${H}`],
  'cert show': [`ntls cert show ${H}`, `ntls cert show --pem ${H} > server.pem    # give clients this file`],
  'cert regen': [`ntls cert regen --key-type ecdsa-p384 --force ${H}`],
  'info show': [`ntls info show ${H}`],
  'info reset': [`ntls info reset ${H}`],
  'service status': [`ntls service status ${H}`],
  'service restart': [`ntls service restart --force ${H}`],
  'config show': [`ntls config show ${H}`],
  'config set': [`ntls config set datapath.receiveTimeout 600 ${H}`, `ntls config set server.bind 10.0.0.1 ${H}`],
  'token list': [`ntls token list ${H}`],
  'token init': [`ntls token init --label backup1 --so-pin 'token-so-1' --pin 'token-pin-1' ${H}`],
  'token show': [`ntls token show --token backup1 ${H}`],
  'token deploy': [`ntls token deploy --token backup1 ${H}`],
  'token undeploy': [`ntls token undeploy --token backup1 ${H}`],
  'token backup': [`ntls token backup --token backup1 --partition payments --partition-pin 'co-pin-1' --token-pin 'token-pin-1' ${H}`],
  'token restore': [`ntls token restore --token backup1 --partition payments --partition-pin 'co-pin-1' --token-pin 'token-pin-1' ${H}`],
  'home backup': [`ntls home backup --out ntls-home.ntlsbackup ${H}`],
  'home restore': ['ntls home restore --in ntls-home.ntlsbackup --home /srv/ntls-restored'],
};

/** The path of a command below the program ("client register"). */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command without subcommands, below `program`. */
export function leafCommands(program: Command): Command[] {
  return program.commands.flatMap((c) => (c.commands.length ? leafCommands(c) : [c])).filter((c) => c.name() !== 'help');
}

/** Adds "Examples:" to the --help of each leaf command that has some. */
export function addExamples(program: Command): void {
  for (const command of leafCommands(program)) {
    const examples = EXAMPLES[commandPath(command)];
    if (examples) command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}\n`);
  }
}
