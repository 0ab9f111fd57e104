// Reliability 1/3: malformed inputs. Every row runs the BUNDLED task with a complete, otherwise
// valid configuration (a live emulator, a live release mirror, a recording cosign wrapper) and one
// bad input. The task must fail with exactly one error, on one line, naming the input, without a
// stack trace, and before ANY request or child process.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Emulator, startEmulator } from '../harness/emulator';
import { generateKeyPair, KeyPair, writePredicate } from '../harness/keys';
import { Mirror, readOnce, sha256, startMirror } from '../harness/mirror';
import { tools } from '../harness/paths';
import { offlineAttestInputs } from '../harness/pipeline-env';
import { count } from '../harness/secrets';
import {
  COSIGN_TASK,
  DO_ID,
  GC_TASK,
  INSTALLER_TASK,
  REG_ID,
  WAIT_TASK,
  Wrapper,
  agentEnv,
  assertOneLineFailure,
  doEnv,
  pathWithRecorder,
  runTask,
  suiteToken,
  timelineEnv,
  wrapper,
} from './support';
import { onlyOn } from '../helpers/skip';

interface Row {
  task: string;
  what: string;
  /** Inputs to set (over the task's valid base); null removes the input. */
  inputs?: Record<string, string | null>;
  /** Env to set over the base; null removes the variable. */
  env?: Record<string, string | null>;
  /** What the one-line message must name. */
  names: string | RegExp;
  /** The message need not repeat the value (e.g. a credential, a missing file's path is enough). */
  noValue?: boolean;
  /** A value that must not appear anywhere in the raw output. */
  mustNotPrint?: string;
}

const HUGE = '99999999999999999999';
const GARBAGE = 'line one\nline two ##vso[task.complete result=Succeeded;]ok\r\n\tthree';

const ROWS: Row[] = [
  // ---- DoRegistryGarbageCollection@1
  { task: GC_TASK, what: 'timeoutMinutes non-numeric', inputs: { timeoutMinutes: 'sixty' }, names: "'timeoutMinutes'" },
  { task: GC_TASK, what: 'timeoutMinutes zero', inputs: { timeoutMinutes: '0' }, names: "'timeoutMinutes'" },
  { task: GC_TASK, what: 'timeoutMinutes negative', inputs: { timeoutMinutes: '-5' }, names: "'timeoutMinutes'" },
  { task: GC_TASK, what: 'timeoutMinutes huge', inputs: { timeoutMinutes: HUGE }, names: "'timeoutMinutes'" },
  { task: GC_TASK, what: 'pollIntervalSeconds fractional', inputs: { pollIntervalSeconds: '1.5' }, names: "'pollIntervalSeconds'" },
  { task: GC_TASK, what: 'warnAfterMinutes with a unit', inputs: { warnAfterMinutes: '15m' }, names: "'warnAfterMinutes'" },
  { task: GC_TASK, what: 'gcType unknown pickList value', inputs: { gcType: 'everything' }, names: "'gcType'" },
  { task: GC_TASK, what: 'gcType as DigitalOcean spells it (spaces)', inputs: { gcType: 'unreferenced blobs only' }, names: "'gcType'" },
  { task: GC_TASK, what: 'ifAlreadyRunning unknown pickList value', inputs: { ifAlreadyRunning: 'retry' }, names: "'ifAlreadyRunning'" },
  { task: GC_TASK, what: 'waitForCompletion empty', inputs: { waitForCompletion: '' }, names: "'waitForCompletion'" },
  { task: GC_TASK, what: "waitForCompletion 'yes'", inputs: { waitForCompletion: 'yes' }, names: "'waitForCompletion'" },
  { task: GC_TASK, what: "cancelOnTimeout '1'", inputs: { cancelOnTimeout: '1' }, names: "'cancelOnTimeout'" },
  { task: GC_TASK, what: 'failOnGcFailure multi-line garbage', inputs: { failOnGcFailure: GARBAGE }, names: "'failOnGcFailure'" },
  { task: GC_TASK, what: 'registry with capitals and underscore', inputs: { registry: 'My_Registry' }, names: "'registry'" },
  { task: GC_TASK, what: 'registry multi-line garbage', inputs: { registry: GARBAGE }, names: "'registry'" },
  { task: GC_TASK, what: 'digitalOceanConnection missing (no env token either)', inputs: { digitalOceanConnection: null }, names: "'digitalOceanConnection'" },
  {
    task: GC_TASK,
    what: 'digitalOceanConnection without an API token',
    env: { [`ENDPOINT_AUTH_PARAMETER_${DO_ID}_APITOKEN`]: null, [`ENDPOINT_AUTH_${DO_ID}`]: null },
    names: "'digitalOceanConnection'",
  },
  {
    task: GC_TASK,
    what: 'digitalOceanConnection server URL not http(s)',
    env: { [`ENDPOINT_URL_${DO_ID}`]: 'ftp://127.0.0.1:1/' },
    names: "'digitalOceanConnection",
  },

  // ---- DoRegistryGcWait@1
  { task: WAIT_TASK, what: 'settleSeconds negative', inputs: { settleSeconds: '-1' }, names: "'settleSeconds'" },
  { task: WAIT_TASK, what: 'settleSeconds non-numeric', inputs: { settleSeconds: 'thirty' }, names: "'settleSeconds'" },
  { task: WAIT_TASK, what: 'timeoutMinutes past the maximum', inputs: { timeoutMinutes: '1441' }, names: "'timeoutMinutes'" },
  { task: WAIT_TASK, what: 'pollIntervalSeconds zero', inputs: { pollIntervalSeconds: '0' }, names: "'pollIntervalSeconds'" },
  { task: WAIT_TASK, what: 'onTimeout unknown pickList value', inputs: { onTimeout: 'ignore' }, names: "'onTimeout'" },
  { task: WAIT_TASK, what: 'registry longer than 63 characters', inputs: { registry: 'r'.repeat(64) }, names: "'registry'" },
  {
    task: WAIT_TASK,
    what: 'waitForStages outside a pipeline run (no timeline)',
    inputs: { waitForStages: 'RegistryMaintenance' },
    env: { SYSTEM_COLLECTIONURI: null, BUILD_BUILDID: null },
    names: "'waitForStages'",
    noValue: true,
  },
  {
    task: WAIT_TASK,
    what: 'waitForStages in a classic release (Release.ReleaseId set: the timeline is the artifact build)',
    inputs: { waitForStages: 'RegistryMaintenance' },
    env: { RELEASE_RELEASEID: '417' },
    names: /'waitForStages' cannot be used in a classic release pipeline \(release 417\).*order the release's stages/,
    noValue: true,
  },

  // ---- CosignInstaller@1
  { task: INSTALLER_TASK, what: "version 'latest'", inputs: { version: 'latest' }, names: "'version'" },
  { task: INSTALLER_TASK, what: 'version range 3.x', inputs: { version: '3.x' }, names: "'version'" },
  { task: INSTALLER_TASK, what: 'version constraint >=2.0.0', inputs: { version: '>=2.0.0' }, names: "'version'" },
  { task: INSTALLER_TASK, what: 'version multi-line garbage', inputs: { version: `3.1.1\n${GARBAGE}` }, names: "'version'" },
  { task: INSTALLER_TASK, what: 'checksum too short', inputs: { checksum: 'abc123' }, names: "'checksum'" },
  { task: INSTALLER_TASK, what: 'checksum 64 non-hex characters', inputs: { checksum: 'z'.repeat(64) }, names: "'checksum'" },
  { task: INSTALLER_TASK, what: 'downloadBaseUrl not a URL', inputs: { downloadBaseUrl: 'not a url' }, names: "'downloadBaseUrl'" },
  { task: INSTALLER_TASK, what: 'downloadBaseUrl file://', inputs: { downloadBaseUrl: 'file:///tmp/mirror' }, names: "'downloadBaseUrl'" },
  { task: INSTALLER_TASK, what: 'trustedRoot a file that does not exist', inputs: { trustedRoot: '/nonexistent/trusted_root.json' }, names: "'trustedRoot'" },
  { task: INSTALLER_TASK, what: 'trustedRoot a folder', inputs: { trustedRoot: '/tmp' }, names: "'trustedRoot'" },
  {
    task: INSTALLER_TASK,
    what: 'certificateIdentity with a space',
    inputs: { certificateIdentity: 'keyless @projectsigstore' },
    names: "'certificateIdentity'",
  },
  {
    task: INSTALLER_TASK,
    what: 'certificateOidcIssuer multi-line garbage',
    inputs: { certificateOidcIssuer: `https://accounts.google.com\n${GARBAGE}` },
    names: "'certificateOidcIssuer'",
  },
  {
    task: INSTALLER_TASK,
    what: 'downloadBaseUrl with credentials in it',
    inputs: { downloadBaseUrl: 'https://mirror-user:mirror-pw-5e1@127.0.0.1:1/cosign' },
    names: /'downloadBaseUrl' must not carry credentials.*'https:\/\/127\.0\.0\.1:1\/cosign'/,
    noValue: true,
    mustNotPrint: 'mirror-pw-5e1',
  },

  // ---- Cosign@1
  { task: COSIGN_TASK, what: 'command unknown pickList value', inputs: { command: 'publish' }, names: "'command'" },
  { task: COSIGN_TASK, what: 'images empty', inputs: { images: '' }, names: "'images'" },
  { task: COSIGN_TASK, what: 'images upper-case repository', inputs: { images: '127.0.0.1:5000/Demo/App:1.0' }, names: "'images'" },
  { task: COSIGN_TASK, what: 'images short digest', inputs: { images: '127.0.0.1:5000/demo/app@sha256:1234' }, names: "'images'" },
  {
    task: COSIGN_TASK,
    what: 'images multi-line with a garbage line',
    inputs: { images: '127.0.0.1:5000/demo/app:1.0\n@@@ not an image @@@' },
    names: /'images': '@@@ not an image @@@'/,
    noValue: true,
  },
  { task: COSIGN_TASK, what: 'key missing for attest', inputs: { key: null }, names: "'key'" },
  { task: COSIGN_TASK, what: 'key file does not exist', inputs: { key: '/nonexistent/cosign.key' }, names: "'key'" },
  { task: COSIGN_TASK, what: 'predicate missing for attest', inputs: { predicate: null }, names: "'predicate'" },
  { task: COSIGN_TASK, what: 'predicate is a folder', inputs: { predicate: '/tmp' }, names: "'predicate'" },
  { task: COSIGN_TASK, what: 'predicateType with spaces', inputs: { predicateType: 'my type' }, names: "'predicateType'" },
  { task: COSIGN_TASK, what: 'maxAttempts zero', inputs: { maxAttempts: '0' }, names: "'maxAttempts'" },
  { task: COSIGN_TASK, what: 'attemptTimeoutSeconds huge', inputs: { attemptTimeoutSeconds: HUGE }, names: "'attemptTimeoutSeconds'" },
  {
    task: COSIGN_TASK,
    what: 'budget violation (10 × 600 s > 20 min)',
    inputs: { maxAttempts: '10', attemptTimeoutSeconds: '600', totalTimeoutMinutes: '20' },
    names: /totalTimeoutMinutes.*maxAttempts|maxAttempts.*totalTimeoutMinutes/,
  },
  {
    task: COSIGN_TASK,
    what: 'maxBackoffSeconds below initialBackoffSeconds',
    inputs: { initialBackoffSeconds: '30', maxBackoffSeconds: '5' },
    names: "'maxBackoffSeconds'",
  },
  { task: COSIGN_TASK, what: "tlogUpload 'yes'", inputs: { tlogUpload: 'yes' }, names: "'tlogUpload'" },
  { task: COSIGN_TASK, what: 'recursive empty', inputs: { recursive: '' }, names: "'recursive'" },
  { task: COSIGN_TASK, what: "gcGuard '1'", inputs: { gcGuard: '1' }, names: "'gcGuard'" },
  { task: COSIGN_TASK, what: 'guardTimeoutMinutes non-numeric', inputs: { guardTimeoutMinutes: '30min' }, names: "'guardTimeoutMinutes'" },
  { task: COSIGN_TASK, what: 'rekorUrl javascript:', inputs: { rekorUrl: 'javascript:alert(1)' }, names: "'rekorUrl'" },
  {
    task: COSIGN_TASK,
    what: 'rekorUrl with a password (it would reach argv and the flag cache)',
    inputs: { rekorUrl: 'https://rekor:rekor-pw-9c2@rekor.example/' },
    names: /'rekorUrl' must not carry credentials/,
    noValue: true,
    mustNotPrint: 'rekor-pw-9c2',
  },
  {
    task: COSIGN_TASK,
    what: 'rekorUrl with a token as its user name',
    inputs: { rekorUrl: 'https://tok-user-71d@rekor.example/' },
    names: /'rekorUrl' must not carry credentials.*'https:\/\/rekor\.example\/'/,
    noValue: true,
    mustNotPrint: 'tok-user-71d',
  },
  {
    task: COSIGN_TASK,
    what: 'waitForStages in a classic release',
    inputs: { waitForStages: 'RegistryMaintenance' },
    env: { RELEASE_RELEASEID: '417' },
    names: /'waitForStages' cannot be used in a classic release pipeline/,
    noValue: true,
  },
  { task: COSIGN_TASK, what: 'annotations line without =', inputs: { command: 'sign', predicate: null, annotations: 'novalue' }, names: "'annotations'" },
  {
    task: COSIGN_TASK,
    what: 'arguments carrying a registry password',
    inputs: { arguments: '--registry-password=hunter2-rel' },
    names: "'arguments'",
    noValue: true,
    // bug: task-lib's getInput echoes `##vso[task.debug]arguments=--registry-password=hunter2-rel` before the task
    // refuses the value, so the password the task rightly rejects is in the raw log. Fix: read 'arguments' without
    // task-lib's debug echo (as readSecret does) — tasks/common/platform/inputs.ts rawInput() / tasks/CosignV1/settings.ts.
    mustNotPrint: 'hunter2-rel',
  },
  { task: COSIGN_TASK, what: 'arguments with an unclosed quote', inputs: { arguments: '--annotations "a=b' }, names: "'arguments'", noValue: true },
  {
    task: COSIGN_TASK,
    what: 'useDigitalOceanCredentials without a DO connection',
    inputs: { digitalOceanConnection: null },
    names: "'useDigitalOceanCredentials'",
  },
  { task: COSIGN_TASK, what: 'verifyAfter without publicKey', inputs: { verifyAfter: 'true', publicKey: null }, names: "'verifyAfter'" },
  { task: COSIGN_TASK, what: 'publicKey required for verify', inputs: { command: 'verify', publicKey: null }, names: "'publicKey'" },
  {
    task: COSIGN_TASK,
    what: 'dockerRegistryConnection that does not exist',
    inputs: { useDigitalOceanCredentials: 'false', dockerRegistryConnection: REG_ID },
    names: "'dockerRegistryConnection'",
  },
  { task: COSIGN_TASK, what: 'cosignPath not an executable', inputs: { cosignPath: '/nonexistent/cosign' }, names: "'cosignPath'" },
];

describe('reliability: malformed inputs (bundled tasks; no request, no child process)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let mirror: Mirror;
  let keys: KeyPair;
  let recorder: Wrapper;
  let predicate: string;
  let recorderPath: string;

  before(async function () {
    onlyOn(this, ['linux'], 'the recorder is a bash wrapper around the Linux cosign');
    emu = await startEmulator({ token: suiteToken() });
    mirror = await startMirror();
    mirror.addRelease('3.1.1', readOnce(tools.cosign3));
    keys = await generateKeyPair();
    predicate = writePredicate(keys.dir);
    recorder = wrapper('cosign');
    recorderPath = pathWithRecorder(recorder);
  });
  after(async () => {
    await emu?.stop();
    await mirror?.close();
  });

  function base(task: string): { inputs: Record<string, string>; env: Record<string, string> } {
    const env: Record<string, string> = { ...agentEnv(), PATH: recorderPath };
    switch (task) {
      case GC_TASK:
        return {
          inputs: { digitalOceanConnection: DO_ID, registry: 'demo-registry', pollIntervalSeconds: '1', timeoutSeconds: '20' },
          env: { ...env, ...doEnv(emu) },
        };
      case WAIT_TASK:
        return {
          inputs: { digitalOceanConnection: DO_ID, registry: 'demo-registry', pollIntervalSeconds: '1', settleSeconds: '0' },
          env: { ...env, ...doEnv(emu), ...timelineEnv(emu) },
        };
      case INSTALLER_TASK:
        // Pinned: the valid base installs from the mirror without a release signature.
        return { inputs: { version: '3.1.1', checksum: sha256(readOnce(tools.cosign3)), downloadBaseUrl: mirror.url }, env };
      default:
        return {
          inputs: offlineAttestInputs(
            {
              image: '127.0.0.1:9/demo-registry/app:1.0',
              keys,
              predicate,
              predicateType: 'https://example.com/rel/v1',
              cosignPath: recorder.path,
              doConnectionId: DO_ID,
            },
            { settleSeconds: '0', attemptTimeoutSeconds: '10', totalTimeoutMinutes: '5' },
          ),
          env: { ...env, ...doEnv(emu) },
        };
    }
  }

  function merge(into: Record<string, string>, over: Record<string, string | null> | undefined): Record<string, string> {
    const out = { ...into };
    for (const [k, v] of Object.entries(over ?? {})) {
      if (v === null) delete out[k];
      else out[k] = v;
    }
    return out;
  }

  it(`has at least 30 rows across the four tasks (${ROWS.length})`, () => {
    assert.ok(ROWS.length >= 30);
    for (const t of [GC_TASK, WAIT_TASK, INSTALLER_TASK, COSIGN_TASK])
      assert.ok(
        ROWS.some((r) => r.task === t),
        t,
      );
  });

  for (const row of ROWS) {
    it(`${row.task}: ${row.what} → Failed, one line naming it, no request, no child`, async () => {
      const b = base(row.task);
      const inputs = merge(b.inputs, row.inputs);
      const env = merge(b.env, row.env);
      const cosignCache = path.join(env.AGENT_TOOLSDIRECTORY, 'cosign');
      const reqBefore = emu.requests.length;
      const mirrorBefore = mirror.requests.length;
      const callsBefore = recorder.calls().length;
      let cacheTouched = false;
      const run = await runTask(row.task, { inputs, env, timeoutMs: 30_000 }).finally(() => {
        cacheTouched = fs.existsSync(cosignCache) && fs.readdirSync(cosignCache).length > 0;
        fs.rmSync(b.env.AGENT_WORKFOLDER, { recursive: true, force: true });
      });
      count('malformed');
      assertOneLineFailure(run, row.names);
      if (row.mustNotPrint) {
        const where = (run.stdout + run.stderr).split('\n').filter((l) => l.includes(row.mustNotPrint!));
        assert.deepStrictEqual(where, [], 'a credential given in an input appears in the raw output');
      }
      // The contract: the message names the input AND the bad value, as the output layer prints data:
      // line breaks as visible escapes, agent commands neutralised.
      const bad = Object.entries(row.inputs ?? {}).filter(([, v]) => v !== null && v !== '');
      if (bad.length === 1 && !row.noValue) {
        const shown = bad[0][1]!
          .replace(/\r\n/g, '\\r\\n')
          .replace(/\n/g, '\\n')
          .replace(/##vso\[/gi, '##vso_[')
          .slice(0, 60);
        assert.ok(run.resultMessage.includes(shown), `the message does not show the bad value ${JSON.stringify(shown)}: ${run.resultMessage}`);
      }
      assert.deepStrictEqual(
        emu.requests.slice(reqBefore).map((r) => `${r.method} ${r.path}`),
        [],
        'no request may reach the emulator (DO API, token endpoint, timeline)',
      );
      assert.deepStrictEqual(
        mirror.requests.slice(mirrorBefore).map((r) => r.path),
        [],
        'no request may reach the release mirror',
      );
      assert.deepStrictEqual(recorder.calls().slice(callsBefore), [], 'no cosign child process may run');
      assert.ok(!cacheTouched, 'nothing downloaded or cached in the tool cache');
    });
  }

  it('the rows used real, valid fixtures (sanity: the same base with no bad input gets past validation)', async () => {
    // The installer with the valid base downloads from the mirror: proves the mirror row context was live.
    const b = base(INSTALLER_TASK);
    const run = await runTask(INSTALLER_TASK, { inputs: b.inputs, env: b.env, timeoutMs: 60_000 });
    assert.strictEqual(run.result, 'Succeeded', run.stdout + run.stderr);
    assert.ok(mirror.requests.length > 0);
  });
});
