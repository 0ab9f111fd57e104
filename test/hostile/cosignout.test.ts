// Hostile surface 5: what cosign prints. Cosign@1 runs a stand-in script (cosignPath) that answers
// the task's `--help`/`version` probes with the real cosign3, and otherwise prints hostile lines to
// stdout/stderr (agent commands, the key and registry passwords, very long lines) and exits 0 or 1.
// resolveDigest=false with a digest reference; registry credentials from a dockerregistry connection.
import { tools } from '../harness/paths';
import { b64, hex64, randomSecret, registryConnection, standIn } from './env';
import { HostileCase, table } from './properties';
import { REG_ID, runCosign } from './runners';
import { closedPort } from './servers';

/** The stand-in's body: probes go to the real cosign, the rest runs `hostile` (bash). */
function script(hostile: string): string {
  return [
    'for a in "$@"; do if [ "$a" = "--help" ]; then exec "' + tools.cosign3 + '" "$@"; fi; done',
    'if [ "$1" = "version" ]; then exec "' + tools.cosign3 + '" "$@"; fi',
    hostile,
  ].join('\n');
}

interface OutOpts {
  result?: 'any' | 'Failed';
  idle?: boolean;
}

function outCase(name: string, classes: HostileCase['classes'], hostile: string, opts: OutOpts = {}): HostileCase {
  return {
    name,
    classes,
    idle: opts.idle,
    exec: async () => {
      const port = await closedPort();
      const password = randomSecret('reg-pw-');
      const pair = b64(`hostile:${password}`);
      const cosign = standIn(script(hostile));
      const image = `127.0.0.1:${port}/hostile/app@sha256:${hex64('image')}`;
      const env = { ...registryConnection(REG_ID, `http://127.0.0.1:${port}`, 'hostile', password) };
      return runCosign(
        image,
        { inputs: { dockerRegistryConnection: REG_ID, resolveDigest: 'false' }, env, secrets: [password, pair], result: opts.result },
        cosign.path,
      );
    },
  };
}

const CMD_SET = '##vso[task.setvariable variable=pwned]1';
const CMD_UPLOAD = '##vso[task.uploadfile]/etc/passwd';
/** The registry password as cosign could see it: decoded from the private DOCKER_CONFIG. */
const PRINT_REGISTRY_PASSWORD =
  'auth=$(grep -o \'"auth": *"[^"]*"\' "$DOCKER_CONFIG/config.json" | head -1 | sed \'s/.*"\\([^"]*\\)"$/\\1/\'); echo "Error: auth $auth"; echo "$auth" | base64 -d; echo';

function cases(): HostileCase[] {
  return [
    outCase('stdout commands, exit 0', ['commands'], `echo "${CMD_SET}"; echo "${CMD_UPLOAD}"; echo "Pushing signature ${CMD_SET}"; exit 0`, { result: 'any' }),
    outCase('stderr commands, exit 1', ['commands'], `echo "${CMD_UPLOAD}" >&2; echo "Error: ${CMD_SET}" >&2; exit 1`),
    outCase(
      'commands after \\r, U+2028, U+2029, U+0085 on one line, exit 1',
      ['commands'],
      `printf 'working\\r${CMD_SET}\\n'; printf 'a\\u2028${CMD_UPLOAD}\\n' >&2; printf 'b\\u2029${CMD_SET}\\n'; printf 'c\\xc2\\x85${CMD_UPLOAD}\\n' >&2; exit 1`,
    ),
    outCase('##[ formatting lines, exit 1', ['commands'], `echo "##[error]pwned"; echo "##[group]pwned" >&2; echo "  ##[section]pwned"; exit 1`),
    outCase(
      'the key password and the registry password, exit 1',
      ['secrets'],
      `echo "Error: decrypting key with password $COSIGN_PASSWORD failed" >&2; echo "password=$COSIGN_PASSWORD"; ${PRINT_REGISTRY_PASSWORD}; cat "$DOCKER_CONFIG/config.json" >&2; exit 1`,
    ),
    outCase('the registry password, exit 0', ['secrets'], `${PRINT_REGISTRY_PASSWORD}; exit 0`, { result: 'any' }),
    outCase('a 1 MiB line ending in a command, exit 0', ['commands', 'size'], `head -c 1048576 /dev/zero | tr '\\0' a; echo "${CMD_SET}"; exit 0`, {
      result: 'any',
    }),
    outCase(
      'a secret past 64 KiB of one stderr line, exit 1',
      ['secrets', 'size'],
      `{ head -c 70000 /dev/zero | tr '\\0' b; echo "$COSIGN_PASSWORD"; } >&2; exit 1`,
    ),
    outCase(
      'output with commands for 30 s (past every deadline)',
      ['commands', 'time'],
      `for i in $(seq 1 3000); do echo "${CMD_UPLOAD}"; echo "${CMD_SET}" >&2; sleep 0.01; done`,
      { idle: true },
    ),
    outCase('silent for 30 s (past every deadline)', ['time'], 'exec sleep 30', { idle: true }),
  ];
}

table('cosign output', cases());
