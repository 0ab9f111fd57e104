// End-to-end tests for Cosign@1: the BUNDLED task (tasks/CosignV1/index.js)
// runs as the agent runs it, with the real cosign 2.x and 3.x, a real
// distribution registry behind the emulator's token-auth front (the Docker V2
// Bearer challenge points at the emulator's /v2/registry/auth, which refuses
// push scopes while a GC runs), and keys made by `cosign generate-key-pair`.
import * as assert from 'assert';
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as path from 'path';
import { tempDir, tools } from '../harness/paths';
import { pushTinyImage, run } from '../harness/registry';
import { agentEnv, describeRun } from '../harness/run-task';
import { isCommand, outputLines } from '../harness/vso';
import {
  COSIGN_VERSIONS,
  PREDICATE_TYPE,
  REG_ID,
  assertNoSecrets,
  baseInputs,
  cosignVerifies,
  pushIndex,
  runCosignTask,
  tempEntries,
  uniqueRepo,
  useCosignFixture,
  wrapper,
} from './cosignSupport';

describe('Cosign@1 end-to-end (bundled task, real cosign, registry behind the emulator front)', function () {
  this.timeout(120_000);
  const f = useCosignFixture();

  for (const [label, cosign] of COSIGN_VERSIONS) {
    describe(label, () => {
      it('GC running when the attest starts → waits, then succeeds, and cosign verify-attestation passes', async () => {
        const repo = uniqueRepo('s000');
        const digest = await pushTinyImage(f.reg.host, `${repo}:1.0`);
        // Long enough that a task slow to start on a busy machine still finds the GC running.
        f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 6 }] });
        // settleSeconds equal to the emulator's tailSeconds (1): the settle never ends before the tail does.
        const r = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { settleSeconds: '1' }));
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.strictEqual(r.outputs.digest, `${f.emu.registryHost}/${repo}@${digest}`);
        assert.strictEqual(r.outputs.attempts, '1', describeRun(r));
        // settleSeconds equals the tail: no push token was refused for the tail after the guard cleared.
        assert.ok(!f.emu.tokenRequests.some((t) => !t.granted && /tailSeconds/.test(t.reason ?? '')), JSON.stringify(f.emu.tokenRequests));
        assert.ok(Number(r.outputs.gcWaitSeconds) >= 2, `gcWaitSeconds ${r.outputs.gcWaitSeconds}`);
        assert.strictEqual(r.outputs.skipped, 'false');
        assert.ok(await cosignVerifies(f, cosign, r.outputs.digest), 'cosign verify-attestation must pass');
        assertNoSecrets(f, r.stdout + r.stderr, 'task output');
        const md = fs.readFileSync(r.commands.find((c) => c.command === 'task.uploadsummary')!.message, 'utf8');
        assert.match(md, /GC guard \(before writing\): Clear to write: GC ended/, 'the summary names the GC wait');
        assert.ok(md.includes(PREDICATE_TYPE), 'the summary names the predicate type');
      });

      it('the GC incident reproduced: guard off, one attempt, GC running → fails with the 401', async () => {
        const repo = uniqueRepo('s000-off');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 60 }] });
        const r = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { gcGuard: 'false', maxAttempts: '1' }));
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        assert.match(r.resultMessage, /401|UNAUTHORIZED/i, describeRun(r));
        assert.match(r.resultMessage, /after 1 attempt/);
        // A DigitalOcean connection is given: the failure says the GC nobody waited for is running.
        assert.match(r.resultMessage, /GC [0-9a-f-]{36} is active on demo-registry \('scanning manifests'\).*enable gcGuard or order the stages/);
        assert.ok(
          f.emu.tokenRequests.some((t) => !t.granted && /write-scoped/.test(t.reason ?? '')),
          'the token endpoint refused a push scope',
        );
      });

      it('a two-platform OCI index by tag → digests is the index digest the registry reports; recursive covers each platform', async () => {
        const repo = uniqueRepo('s002');
        const d = await pushIndex(f.reg, repo, '2.0');
        const r = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:2.0`, { recursive: 'true', command: 'sign', predicate: '' }));
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.strictEqual(r.outputs.digests, `${f.emu.registryHost}/${repo}@${d.index}`);
        assert.notStrictEqual(d.index, d.amd64, 'never manifests[0]');
        assert.strictEqual(r.outputs.mediaTypes, 'application/vnd.oci.image.index.v1+json');
        assert.match(r.stdout, /index of 2 platform manifest/);
        const summary = r.commands.find((c) => c.command === 'task.uploadsummary');
        assert.ok(summary && fs.existsSync(summary.message), 'a Markdown summary is attached');
        const md = fs.readFileSync(summary!.message, 'utf8');
        for (const digest of [d.index, d.amd64, d.arm64]) assert.ok(md.includes(digest), `summary lists ${digest}`);
        assert.match(md, /linux\/arm64/);
        for (const digest of [d.index, d.amd64, d.arm64]) {
          assert.ok(await cosignVerifies(f, cosign, `${f.emu.registryHost}/${repo}@${digest}`, 'verify'), `signature on ${digest}`);
        }
      });

      it('Rekor 404 twice, then the real cosign → success with attempts = 3', async () => {
        const repo = uniqueRepo('s001');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const dir = tempDir('wrap');
        const w = wrapper(
          dir,
          'cosign-rekor404',
          `if [ "$1" = attest ] && [[ " $* " != *" --help "* ]]; then
  n=$(cat "${dir}/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${dir}/n"
  if [ $n -le 2 ]; then
    echo 'Error: signing [x@sha256:49758a04]: signing digest: [GET /api/v1/log/entries/{entryUUID}][404] getLogEntryByUuidNotFound' >&2
    echo 'error during command execution: signing digest: [GET /api/v1/log/entries/{entryUUID}][404] getLogEntryByUuidNotFound' >&2
    exit 1
  fi
fi
exec "${cosign}" "$@"`,
        );
        const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { skipIfPresent: 'false' }));
        assert.strictEqual(r.result, 'Succeeded', describeRun(r));
        assert.strictEqual(r.outputs.attempts, '3', describeRun(r));
        assert.match(r.stdout, /Attempt 1\/5 of attest .* failed \[transient: rekor-404\].*waiting \d+ ms/);
        assert.match(r.stdout, /Attempt 2\/5 of attest .* failed \[transient: rekor-404\]/);
        assert.ok(await cosignVerifies(f, cosign, r.outputs.digest));
      });

      it('a permanent error (wrong key password) → exactly one attempt and a one-line hint', async () => {
        const repo = uniqueRepo('perm');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const dir = tempDir('wrap');
        const log = path.join(dir, 'calls');
        const w = wrapper(dir, 'cosign-count', `[[ " $* " != *" --help "* ]] && echo "$1" >> "${log}"\nexec "${cosign}" "$@"`);
        const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { keyPassword: 'not-the-password', skipIfPresent: 'false' }));
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        assert.match(r.resultMessage, /after 1 attempt\(s\) \[permanent: wrong-key-password\]/);
        assert.ok(!r.resultMessage.includes('\n'));
        const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
        assert.deepStrictEqual(calls, ['attest']);
        assert.strictEqual(r.outputs.attempts, '1', 'attempts is reported on failure too');
      });

      it("cosign gets '--' before the image, extra arguments stay before it; a usage error is permanent (one attempt)", async () => {
        const repo = uniqueRepo('argv');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const dir = tempDir('wrap');
        const log = path.join(dir, 'argv');
        const w = wrapper(dir, 'cosign-argv', `[[ " $* " != *" --help "* ]] && printf '%s\\n' "$*" >> "${log}"\nexec "${cosign}" "$@"`);
        const image = `${f.emu.registryHost}/${repo}:1.0`;
        const ok = await runCosignTask(f, baseInputs(f, w, image, { skipIfPresent: 'true', verifyAfter: 'true', arguments: '--timeout=50s' }));
        assert.strictEqual(ok.result, 'Succeeded', describeRun(ok));
        const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
        assert.deepStrictEqual(
          lines.map((l) => l.split(' ')[0]),
          ['verify-attestation', 'attest', 'verify-attestation'],
        );
        for (const l of lines) assert.ok(l.endsWith(` -- ${ok.outputs.digest}`), `'--' right before the image: ${l}`);
        const attest = lines[1].split(' ');
        assert.ok(attest.indexOf('--timeout=50s') > 0 && attest.indexOf('--timeout=50s') < attest.indexOf('--'), lines[1]);
        fs.rmSync(log);
        // The real cosign refuses the flag value the same way every time: not retried.
        const bad = await runCosignTask(f, baseInputs(f, w, image, { skipIfPresent: 'false', arguments: '--timeout=abc' }));
        assert.strictEqual(bad.result, 'Failed', describeRun(bad));
        assert.match(bad.resultMessage, /after 1 attempt\(s\) \[permanent: usage\].*invalid argument "abc"/);
        assert.deepStrictEqual(
          fs
            .readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ')[0]),
          ['attest'],
        );
      });

      it('GC starting during the retry loop (401 mid-run) goes back to the guard and recovers', async () => {
        const repo = uniqueRepo('mid');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const dir = tempDir('wrap');
        // The first real attest waits for the test to start a GC, so the push token is refused mid-run.
        const w = wrapper(
          dir,
          'cosign-slow-first',
          `if [ "$1" = attest ] && [[ " $* " != *" --help "* ]]; then
  n=$(cat "${dir}/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${dir}/n"
  if [ $n -eq 1 ]; then touch "${dir}/first"; for i in $(seq 1 50); do [ -f "${dir}/go" ] && break; sleep 0.1; done; fi
fi
exec "${cosign}" "$@"`,
        );
        const watcher = setInterval(() => {
          if (fs.existsSync(path.join(dir, 'first')) && !fs.existsSync(path.join(dir, 'go'))) {
            f.emu.startGc('demo-registry', { steps: [{ status: 'deleting unreferenced blobs', seconds: 2 }] });
            fs.writeFileSync(path.join(dir, 'go'), '');
          }
        }, 20);
        try {
          const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { skipIfPresent: 'false' }));
          assert.strictEqual(r.result, 'Succeeded', describeRun(r));
          assert.strictEqual(r.outputs.attempts, '2', describeRun(r));
          assert.match(r.stdout, /\[reguard: registry-401\]/);
          assert.match(r.stdout, /GC guard \(401 from the registry token exchange\)/);
          assert.ok(Number(r.outputs.gcWaitSeconds) >= 1, describeRun(r));
          assert.ok(await cosignVerifies(f, cosign, r.outputs.digest));
        } finally {
          clearInterval(watcher);
        }
      });

      it('idempotent re-run: the second run finds the attestation and skips (skipped = true)', async () => {
        const repo = uniqueRepo('idem');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const inputs = baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`);
        const first = await runCosignTask(f, inputs);
        assert.strictEqual(first.result, 'Succeeded', describeRun(first));
        assert.strictEqual(first.outputs.skipped, 'false');
        f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 60 }] });
        const second = await runCosignTask(f, inputs);
        assert.strictEqual(second.result, 'Succeeded', describeRun(second));
        assert.strictEqual(second.outputs.skipped, 'true');
        assert.strictEqual(second.outputs.attempts, '0');
        assert.strictEqual(second.outputs.gcWaitSeconds, '0', 'nothing to write: no wait for the running GC');
        assert.match(second.stdout, /skipIfPresent: .* already has an attestation of type https:\/\/example.com\/promotion\/v1/);
      });

      it('verifyAfter catches a write that did not happen (cosign exits 0 without writing)', async () => {
        const repo = uniqueRepo('va');
        await pushTinyImage(f.reg.host, `${repo}:1.0`);
        const dir = tempDir('wrap');
        const w = wrapper(
          dir,
          'cosign-noop',
          `if [ "$1" = attest ] && [[ " $* " != *" --help "* ]]; then echo "pretending to attest" >&2; exit 0; fi\nexec "${cosign}" "$@"`,
        );
        const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { verifyAfter: 'true', maxAttempts: '2' }));
        assert.strictEqual(r.result, 'Failed', describeRun(r));
        assert.match(r.resultMessage, /^verifyAfter: .* does not verify/);
      });
    });
  }

  describe('cosign 3.x only', () => {
    const cosign = tools.cosign3;

    it('budget violation → immediate failure naming the numbers, zero requests, zero children', async () => {
      const before = f.emu.requests.length;
      const dir = tempDir('wrap');
      const log = path.join(dir, 'calls');
      const w = wrapper(dir, 'cosign-any', `echo "$*" >> "${log}"\nexec "${cosign}" "$@"`);
      const r = await runCosignTask(
        f,
        baseInputs(f, w, `${f.emu.registryHost}/demo-registry/x:1`, { maxAttempts: '5', attemptTimeoutSeconds: '300', totalTimeoutMinutes: '20' }),
      );
      assert.strictEqual(r.result, 'Failed', describeRun(r));
      assert.match(
        r.resultMessage,
        /maxAttempts \(5\) × attemptTimeoutSeconds \(300\) \+ largest backoffs \(\d+s\) = \d+s exceeds totalTimeoutMinutes \(1200s\)/,
      );
      assert.strictEqual(f.emu.requests.length, before, 'no request reached the emulator');
      assert.ok(!fs.existsSync(log), 'cosign never ran');
    });

    it('cancellation mid-attempt: SIGINT (then SIGTERM) → Cancelled within 5 s, no child left, no temporary docker config left', async () => {
      const repo = uniqueRepo('cancel');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const dir = tempDir('wrap');
      const pidFile = path.join(dir, 'pid');
      const w = wrapper(
        dir,
        'cosign-hang',
        `if [ "$1" = attest ] && [[ " $* " != *" --help "* ]]; then echo $$ > "${pidFile}"; sleep 60; fi\nexec "${cosign}" "$@"`,
      );
      const agent = agentEnv();
      let child: ChildProcess | undefined;
      let sentAt = 0;
      const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { skipIfPresent: 'false' }), {
        agent,
        onSpawn: (c) => (child = c),
        onLine: (l) => {
          if (/attest .*: attempt 1\//.test(l) && !sentAt) {
            const wait = setInterval(() => {
              if (!fs.existsSync(pidFile)) return;
              clearInterval(wait);
              assert.ok(tempEntries(agent).length === 1, 'the private docker config exists while cosign runs');
              sentAt = Date.now();
              child!.kill('SIGINT');
              // As the agent does: SIGTERM follows when the task is still there.
              setTimeout(() => child!.exitCode === null && child!.signalCode === null && child!.kill('SIGTERM'), 2000).unref();
            }, 20);
          }
        },
      });
      const elapsed = Date.now() - sentAt;
      assert.ok(sentAt > 0, describeRun(r));
      assert.strictEqual(r.result, 'Cancelled', describeRun(r));
      assert.ok(elapsed < 5000, `cancelled after ${elapsed} ms`);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      assert.ok(!alive, 'the cosign child is gone');
      assert.deepStrictEqual(tempEntries(agent), [], 'the private docker config is removed');
    });

    it('no secret in any output or in the argv of children; credentials reach cosign only via its private DOCKER_CONFIG', async () => {
      const repo = uniqueRepo('secrets');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const dir = tempDir('wrap');
      const argvLog = path.join(dir, 'argv');
      const envLog = path.join(dir, 'env');
      const w = wrapper(
        dir,
        'cosign-record',
        `printf '%s\\n' "$0 $*" >> "${argvLog}"\n[ -n "$DOCKER_CONFIG" ] && [ -f "$DOCKER_CONFIG/config.json" ] && stat -c '%a' "$DOCKER_CONFIG" > "${envLog}.mode"\nenv | cut -d= -f1 | sort > "${envLog}"\nexec "${cosign}" "$@"`,
      );
      // Registry password through a docker registry service connection (issued by the emulator).
      const creds = f.emu.dockerCredentials({ readWrite: true });
      const agent = agentEnv();
      const r = await runCosignTask(
        f,
        baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { useDigitalOceanCredentials: 'false', dockerRegistryConnection: REG_ID, verifyAfter: 'true' }),
        {
          agent,
          env: {
            [`ENDPOINT_URL_${REG_ID}`]: `http://${f.emu.registryHost}`,
            [`ENDPOINT_AUTH_${REG_ID}`]: JSON.stringify({ scheme: 'UsernamePassword', parameters: { username: creds.username, password: creds.password } }),
            [`ENDPOINT_AUTH_PARAMETER_${REG_ID}_USERNAME`]: creds.username,
            [`ENDPOINT_AUTH_PARAMETER_${REG_ID}_PASSWORD`]: creds.password,
            SYSTEM_DEBUG: 'true',
          },
        },
      );
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      const everything = r.stdout + r.stderr;
      for (const secret of [f.keys.password, f.emu.token, creds.password]) {
        assert.ok(!everything.includes(secret), `a secret leaked into the output: ${secret.slice(0, 4)}…`);
        assert.ok(!fs.readFileSync(argvLog, 'utf8').includes(secret), 'a secret reached argv');
      }
      const envNames = fs.readFileSync(envLog, 'utf8').split('\n');
      assert.ok(envNames.includes('COSIGN_PASSWORD'), 'key password via COSIGN_PASSWORD');
      assert.ok(!envNames.some((n) => /^(INPUT_|ENDPOINT_|SECRET_)/.test(n)), 'no task inputs or endpoint secrets in cosign env');
      assert.strictEqual(fs.readFileSync(`${envLog}.mode`, 'utf8').trim(), '700');
      assert.deepStrictEqual(tempEntries(agent), [], 'private docker config removed after success');
    });

    it("images empty: signs what the job's docker push recorded in RESOURCE_URIS, and says so; a malformed entry is one line", async () => {
      const repo = uniqueRepo('resuris');
      const d1 = await pushTinyImage(f.reg.host, `${repo}:1`);
      const d2 = await pushTinyImage(f.reg.host, `${repo}:2`);
      const pinned = [`${f.emu.registryHost}/${repo}@${d1}`, `${f.emu.registryHost}/${repo}@${d2}`];
      const inputs = baseInputs(f, cosign, '', { command: 'sign', predicate: '', skipIfPresent: 'false' });
      const r = await runCosignTask(f, inputs, { env: { RESOURCE_URIS: pinned.map((p) => `docker://${p}`).join(',') } });
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.digests, pinned.join(','));
      assert.match(r.stdout, /images is empty: using the 2 image\(s\) this job's docker push recorded \(RESOURCE_URIS\)/);
      assert.ok(await cosignVerifies(f, cosign, pinned[1], 'verify'));
      const bad = await runCosignTask(f, inputs, { env: { RESOURCE_URIS: pinned[0] } });
      assert.strictEqual(bad.result, 'Failed', describeRun(bad));
      assert.match(bad.resultMessage, /RESOURCE_URIS holds '.*', which is not <scheme>:\/\/<image reference>/);
    });

    it('bad inputs: each contract type fails at once with one line naming the input, no request, no child', async () => {
      const dir = tempDir('wrap');
      const log = path.join(dir, 'calls');
      const w = wrapper(dir, 'cosign-any', `echo "$*" >> "${log}"\nexec "${cosign}" "$@"`);
      const image = `${f.emu.registryHost}/demo-registry/x:1`;
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ command: 'sigh' }, /Input 'command' must be one of attest, sign, verify, verify-attestation, got 'sigh'/],
        [{ images: '' }, /Input 'images' is empty, and no docker push of this job recorded any images \(RESOURCE_URIS\)/],
        [{ images: 'UPPER/Case:1' }, /Input 'images'.*not a valid image reference/],
        [{ key: '' }, /Input 'key' is required for command 'attest'/],
        [{ key: path.join(dir, 'nope.key') }, /Input 'key': the file .* does not exist/],
        [{ predicate: '' }, /Input 'predicate' is required/],
        [{ predicate: dir }, /Input 'predicate': .* is a folder/],
        [{ command: 'verify', publicKey: '' }, /Input 'publicKey' is required for command 'verify'/],
        [{ recursive: '' }, /Input 'recursive' must be 'true' or 'false', got ''/],
        [{ gcGuard: 'yes' }, /Input 'gcGuard' must be 'true' or 'false', got 'yes'/],
        [{ maxAttempts: '2.5' }, /Input 'maxAttempts' must be a whole number from 1 to 100, got '2.5'/],
        [{ maxAttempts: '0' }, /Input 'maxAttempts' must be a whole number from 1 to 100, got '0'/],
        [{ attemptTimeoutSeconds: 'abc' }, /Input 'attemptTimeoutSeconds' must be a whole number/],
        [{ guardTimeoutMinutes: '-1' }, /Input 'guardTimeoutMinutes' must be a whole number/],
        [{ rekorUrl: 'ftp://x' }, /Input 'rekorUrl' must be an http\(s\) URL/],
        [{ annotations: 'novalue' }, /Input 'annotations'/],
        [{ useDigitalOceanCredentials: 'true', digitalOceanConnection: '' }, /Input 'useDigitalOceanCredentials' is true, but no 'digitalOceanConnection'/],
        [{ cosignPath: path.join(dir, 'missing-cosign') }, /Input 'cosignPath'/],
        [{ arguments: '--registry-password=x' }, /Input 'arguments' must not carry credentials/],
        [{ registry: 'Bad_Name' }, /Input 'registry' must be a DigitalOcean registry name/],
      ];
      const before = f.emu.requests.length;
      for (const [extra, re] of cases) {
        const r = await runCosignTask(f, baseInputs(f, w, image, { cosignPath: w, ...extra }));
        assert.strictEqual(r.result, 'Failed', `${JSON.stringify(extra)}\n${describeRun(r)}`);
        assert.match(r.resultMessage, re, JSON.stringify(extra));
        assert.ok(!r.resultMessage.includes('\n'));
      }
      assert.strictEqual(f.emu.requests.length, before, 'no request reached the emulator');
      assert.ok(!fs.existsSync(log), 'cosign never ran');
    });

    it('digest resolution: a 503 from the registry is retried; an unknown tag fails at once (MANIFEST_UNKNOWN), cosign never writes', async () => {
      const repo = uniqueRepo('resolve');
      const digest = await pushTinyImage(f.reg.host, `${repo}:1.0`);
      f.emu.fault('front', { kind: '5xx', status: 503, times: 1 });
      const ok = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { skipIfPresent: 'false' }));
      assert.strictEqual(ok.result, 'Succeeded', describeRun(ok));
      assert.strictEqual(ok.outputs.digest, `${f.emu.registryHost}/${repo}@${digest}`);
      assert.match(ok.stdout, /Attempt 1\/5 of digest resolution failed \[transient/);
      f.emu.clearFaults();
      const dir = tempDir('wrap');
      const log = path.join(dir, 'calls');
      const w = wrapper(dir, 'cosign-count', `[[ " $* " != *" --help "* ]] && echo "$1" >> "${log}"\nexec "${cosign}" "$@"`);
      const missing = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:no-such-tag`));
      assert.strictEqual(missing.result, 'Failed', describeRun(missing));
      assert.match(missing.resultMessage, /MANIFEST_UNKNOWN/);
      assert.ok(!fs.existsSync(log), 'cosign never ran');
    });

    it('a registry that answers an HTML page, or trickles, fails closed: retried within the budget, then Failed; no digest output, no cosign run', async () => {
      const dir = tempDir('wrap');
      const log = path.join(dir, 'calls');
      const w = wrapper(dir, 'cosign-count', `[[ " $* " != *" --help "* ]] && echo "$1" >> "${log}"\nexec "${cosign}" "$@"`);
      const pages: Array<[string, (res: http.ServerResponse) => void, RegExp]> = [
        [
          'html',
          (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy login ##vso[task.complete result=Succeeded]</html>'),
          /\[transient: unexpected answer\].*text\/html/,
        ],
        [
          'trickle',
          (res) => {
            res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
            const t = setInterval(() => res.write(' '), 1000);
            res.on('close', () => clearInterval(t));
          },
          /\[transient: timeout\].*attempt deadline/,
        ],
      ];
      for (const [name, answer, re] of pages) {
        const sockets = new Set<import('net').Socket>();
        const srv = http.createServer((_req, res) => answer(res));
        srv.on('connection', (c) => sockets.add(c));
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
        const host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
        try {
          const inputs = baseInputs(f, w, `${host}/demo/app:1`, {
            useDigitalOceanCredentials: 'false',
            gcGuard: 'false',
            maxAttempts: '2',
            attemptTimeoutSeconds: '2',
            initialBackoffSeconds: '0',
            maxBackoffSeconds: '0',
            totalTimeoutMinutes: '1',
          });
          const r = await runCosignTask(f, inputs);
          assert.strictEqual(r.result, 'Failed', `${name}\n${describeRun(r)}`);
          assert.match(r.resultMessage, /Resolving .* failed after 2 attempt\(s\)/, name);
          assert.match(r.resultMessage, re, name);
          assert.ok(!(r.stdout + r.stderr).includes('##vso[task.complete result=Succeeded'), 'nothing from the page runs as a command');
          assert.strictEqual(r.outputs.digests, undefined, 'no digest from an answer that is not a manifest');
          if (name === 'trickle') assert.ok(r.durationMs >= 4000 && r.durationMs < 15_000, `two 2 s attempts, took ${r.durationMs} ms`);
        } finally {
          for (const c of sockets) c.destroy();
          await new Promise((r) => srv.close(r));
        }
      }
      assert.ok(!fs.existsSync(log), 'cosign never ran');
    });

    it('resolveDigest false: by digest, mediaTypes is the fixed placeholder; by tag, no digest outputs at all', async () => {
      const repo = uniqueRepo('noresolve');
      const digest = await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const byDigest = await runCosignTask(
        f,
        baseInputs(f, cosign, `${f.emu.registryHost}/${repo}@${digest}`, { resolveDigest: 'false', skipIfPresent: 'false' }),
      );
      assert.strictEqual(byDigest.result, 'Succeeded', describeRun(byDigest));
      assert.strictEqual(byDigest.outputs.digests, `${f.emu.registryHost}/${repo}@${digest}`);
      assert.strictEqual(byDigest.outputs.mediaTypes, 'application/octet-stream');
      const byTag = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { resolveDigest: 'false', skipIfPresent: 'false' }));
      assert.strictEqual(byTag.result, 'Succeeded', describeRun(byTag));
      assert.deepStrictEqual([byTag.outputs.digests, byTag.outputs.digest, byTag.outputs.mediaTypes], [undefined, undefined, undefined]);
      assert.strictEqual(byTag.outputs.skipped, 'false');
    });

    it('DigitalOcean-issued registry credentials are registered as secrets with the agent and never printed', async () => {
      const repo = uniqueRepo('issued');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const agent = agentEnv();
      const r = await runCosignTask(f, baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { skipIfPresent: 'false' }), {
        agent,
        env: { SYSTEM_DEBUG: 'true' },
      });
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      const registered = r.commands.filter((c) => c.command === 'task.setsecret').map((c) => c.message);
      const auth = registered.find((v) => /^[A-Za-z0-9+/]+=*$/.test(v) && Buffer.from(v, 'base64').toString('utf8').includes(':'));
      assert.ok(auth, `the issued auth was registered (${registered.length} setsecret lines)`);
      const [user, password] = Buffer.from(auth!, 'base64').toString('utf8').split(':');
      assert.ok(registered.includes(password), 'the issued password was registered');
      const printed = outputLines(r.stdout + r.stderr).filter((l) => !isCommand(l, 'task.setsecret'));
      for (const secret of [auth!, password, user]) assert.ok(!printed.some((l) => l.includes(secret)), 'an issued credential was printed');
      assert.deepStrictEqual(tempEntries(agent), [], 'private docker config removed');
    });

    it('a hung attempt is stopped at attemptTimeoutSeconds and retried (transient: attempt-timeout)', async () => {
      const repo = uniqueRepo('hang');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const dir = tempDir('wrap');
      const w = wrapper(
        dir,
        'cosign-hang-once',
        `if [ "$1" = attest ] && [[ " $* " != *" --help "* ]]; then
  n=$(cat "${dir}/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${dir}/n"
  if [ $n -eq 1 ]; then echo $$ > "${dir}/pid"; sleep 60; fi
fi
exec "${cosign}" "$@"`,
      );
      const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { attemptTimeoutSeconds: '2', skipIfPresent: 'false' }));
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.strictEqual(r.outputs.attempts, '2');
      assert.match(r.stdout, /Attempt 1\/5 of attest .* failed \[transient: attempt-timeout\]/);
      let alive = true;
      try {
        process.kill(Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8')), 0);
      } catch {
        alive = false;
      }
      assert.ok(!alive, 'the hung child was killed');
    });

    it('waitForStages: waits for the named stage of this run (timeline), then writes', async () => {
      const repo = uniqueRepo('stages');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      f.emu.setStages([
        { name: 'RegistryMaintenance', state: 'inProgress', completeAfterSeconds: 2, result: 'succeeded' },
        { name: 'AttestStaging', state: 'inProgress', current: true },
      ]);
      const r = await runCosignTask(
        f,
        baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { waitForStages: 'RegistryMaintenance', settleSeconds: '0' }),
        {
          env: {
            SYSTEM_COLLECTIONURI: f.emu.collectionUri,
            SYSTEM_TEAMPROJECT: f.emu.project,
            BUILD_BUILDID: f.emu.buildId,
            SYSTEM_ACCESSTOKEN: f.emu.buildAccessToken,
            SYSTEM_STAGENAME: 'AttestStaging',
          },
        },
      );
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.ok(r.durationMs >= 1500, `waited for the stage (${r.durationMs} ms)`);
      assert.ok(await cosignVerifies(f, cosign, r.outputs.digest));
    });

    it('the guard times out → Failed, nothing written', async () => {
      const repo = uniqueRepo('guard-timeout');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      f.emu.startGc('demo-registry', { steps: [{ status: 'scanning manifests', seconds: 60 }] });
      const dir = tempDir('wrap');
      const log = path.join(dir, 'calls');
      const w = wrapper(dir, 'cosign-count', `[[ " $* " != *" --help "* ]] && echo "$1" >> "${log}"\nexec "${cosign}" "$@"`);
      const r = await runCosignTask(f, baseInputs(f, w, `${f.emu.registryHost}/${repo}:1.0`, { guardTimeoutSeconds: '2' }));
      assert.strictEqual(r.result, 'Failed', describeRun(r));
      assert.match(r.resultMessage, /GC guard timed out/);
      const summary = r.commands.find((c) => c.command === 'task.uploadsummary');
      assert.ok(summary && /Cosign@1: attest failed[\s\S]*GC guard timed out/.test(fs.readFileSync(summary.message, 'utf8')), 'a summary on failure too');
      const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      assert.ok(!/^attest$/m.test(calls), `cosign attest never ran: ${calls}`);
      assert.strictEqual(
        r.outputs.digest,
        `${f.emu.registryHost}/${repo}@${(await run(tools.crane, ['digest', `${f.reg.host}/${repo}:1.0`, '--insecure'])).stdout.trim()}`,
        'digests are reported even on failure',
      );
    });

    it("the agent's own docker config (after a docker login) is used as is: nothing written to temp", async () => {
      const repo = uniqueRepo('agentcfg');
      await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const agent = agentEnv();
      const r = await runCosignTask(
        f,
        baseInputs(f, cosign, `${f.emu.registryHost}/${repo}:1.0`, { useDigitalOceanCredentials: 'false', digitalOceanConnection: '', gcGuard: 'false' }),
        { agent, env: { DOCKER_CONFIG: f.frontConfig } },
      );
      assert.strictEqual(r.result, 'Succeeded', describeRun(r));
      assert.match(r.stdout, /Registry credentials: the agent's docker config/);
      assert.deepStrictEqual(tempEntries(agent), []);
      assert.ok(await cosignVerifies(f, cosign, r.outputs.digest));
    });

    it('verify and verify-attestation commands pass on what attest/sign wrote, fail with a permanent hint otherwise', async () => {
      const repo = uniqueRepo('verify');
      const digest = await pushTinyImage(f.reg.host, `${repo}:1.0`);
      const image = `${f.emu.registryHost}/${repo}:1.0`;
      const none = await runCosignTask(f, baseInputs(f, cosign, image, { command: 'verify-attestation', maxAttempts: '3' }));
      assert.strictEqual(none.result, 'Failed', describeRun(none));
      assert.match(none.resultMessage, /after 1 attempt\(s\) \[permanent: not-verified\]/);
      const attest = await runCosignTask(f, baseInputs(f, cosign, image));
      assert.strictEqual(attest.result, 'Succeeded', describeRun(attest));
      const ok = await runCosignTask(f, baseInputs(f, cosign, image, { command: 'verify-attestation' }));
      assert.strictEqual(ok.result, 'Succeeded', describeRun(ok));
      assert.strictEqual(ok.outputs.digest, `${f.emu.registryHost}/${repo}@${digest}`);
      // verify (signatures) must not be satisfied by the attestation alone (cosign 3 lists both).
      const sig = await runCosignTask(f, baseInputs(f, cosign, image, { command: 'verify', maxAttempts: '1' }));
      assert.strictEqual(sig.result, 'Failed', describeRun(sig));
    });
  });
});
