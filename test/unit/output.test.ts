// The output layer, in a child process as a task would load it: every line-break form, every place a
// `##vso[` can hide, every form of a secret, and what task-lib prints by itself.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { ROOT, tempDir } from '../harness/paths';
import { parseOutput } from '../harness/vso';

const OUTPUT = path.join(ROOT, 'out', 'tasks', 'common', 'platform', 'output.js');

/** Runs `script` after loading the output layer and installing its guard, as runTask does first. */
function runWithOutputLayer(script: string, env: Record<string, string> = {}): { stdout: string; stderr: string } {
  const prelude = `const out = require(${JSON.stringify(OUTPUT)}); out.installOutputGuard();\n`;
  const r = spawnSync(process.execPath, ['-e', prelude + script], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
    encoding: 'utf8',
  });
  assert.strictEqual(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

const BREAKS: Array<[string, string]> = [
  ['LF', '\n'],
  ['CR', '\r'],
  ['CRLF', '\r\n'],
  ['VT', '\u000b'],
  ['FF', '\u000c'],
  ['NEL', '\u0085'],
  ['LINE SEPARATOR', '\u2028'],
  ['PARAGRAPH SEPARATOR', '\u2029'],
];

describe('unit: the output layer', () => {
  for (const [name, br] of BREAKS) {
    it(`a ${name} in data never starts a line of its own, in info, warnings, debug and the result`, () => {
      const data = `status${br}##[error]forged${br}##vso[task.setvariable variable=pwned]1`;
      const { stdout } = runWithOutputLayer(
        `const d = ${JSON.stringify(data)}; out.info('GC is ' + d); out.warn(d); out.debug(d); out.setResult('Failed', 'failed: ' + d);`,
      );
      const lines = stdout.split(/\r?\n/).filter(Boolean);
      assert.strictEqual(lines.length, 5, stdout);
      for (const l of lines) {
        // eslint-disable-next-line no-control-regex -- the raw line breaks are what must not survive
        assert.ok(!/[\r\u000b\u000c\u0085\u2028\u2029]/.test(l), `a raw break survived: ${JSON.stringify(l)}`);
        assert.ok(!l.startsWith('##['), l);
        assert.strictEqual(l.indexOf('##vso[', 1), -1, `a second ##vso[ in: ${l}`);
      }
      assert.ok(!parseOutput(stdout).some((c) => c.command === 'task.setvariable'), stdout);
      assert.match(lines[0], /^GC is status\\/);
    });
  }

  it('neutralises ##vso[ anywhere in a line and in any case, and the ##[ prefix', () => {
    const { stdout } = runWithOutputLayer(
      `out.info('x ##vso[task.uploadfile]/etc/passwd ##VSO[task.complete result=Succeeded;]ok'); out.info('##[group]not a group');`,
    );
    assert.ok(!/##vso\[/i.test(stdout), stdout);
    assert.ok(!stdout.split('\n').some((l) => l.startsWith('##[')), stdout);
    assert.match(stdout, /##vso_\[task\.uploadfile\]/);
  });

  it('redacts a secret in every form: raw, URL-encoded, JSON-escaped, and base64 user:password', () => {
    const secret = 'p@ss "w/ord"';
    const pair = Buffer.from(`robot:${secret}`).toString('base64');
    const { stdout } = runWithOutputLayer(
      `out.addCredentialPair('robot', ${JSON.stringify(secret)});
       out.info('raw ' + ${JSON.stringify(secret)});
       out.info('url ' + encodeURIComponent(${JSON.stringify(secret)}));
       out.info('json ' + JSON.stringify({ p: ${JSON.stringify(secret)} }));
       out.info('basic Basic ' + ${JSON.stringify(pair)});
       out.setResult('Failed', 'echoed: ' + ${JSON.stringify(secret)});`,
    );
    assert.ok(!stdout.includes(secret), stdout);
    assert.ok(!stdout.includes(encodeURIComponent(secret)), stdout);
    assert.ok(!stdout.includes(JSON.stringify(secret).slice(1, -1)), stdout);
    assert.ok(!stdout.includes(pair), stdout);
    assert.strictEqual((stdout.match(/\*\*\*/g) ?? []).length >= 6, true, stdout);
  });

  it('task.setsecret is the one line a server-issued secret is written, and everything else is redacted', () => {
    const { stdout } = runWithOutputLayer(
      `out.addSecret('issued-credential-123', { registerWithAgent: true }); console.log('foreign write issued-credential-123'); process.stderr.write('err issued-credential-123 ##vso[task.debug]x\\n');`,
    );
    const lines = stdout.split('\n').filter(Boolean);
    assert.deepStrictEqual(
      lines.filter((l) => l.includes('issued-credential-123')),
      ['##vso[task.setsecret]issued-credential-123'],
    );
    assert.ok(lines.includes('foreign write ***'), stdout);
  });

  it('secrets the agent passed are known before task-lib prints anything: its load-time Agent.ProxyPassword echo is redacted', () => {
    const taskLib = path.join(ROOT, 'node_modules', 'azure-pipelines-task-lib', 'task.js');
    const { stdout, stderr } = runWithOutputLayer(
      `require(${JSON.stringify(taskLib)}); require(${JSON.stringify(taskLib)}).getVariable('Agent.ProxyPassword');`,
      {
        SYSTEM_DEBUG: 'true',
        // task-lib writes the AES key of the proxy password it keeps encrypted into the temp folder (else the cwd).
        AGENT_TEMPDIRECTORY: tempDir('output-agent-temp'),
        DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF: 'false',
        AGENT_PROXYURL: 'http://127.0.0.1:9',
        AGENT_PROXYUSERNAME: 'proxyuser',
        AGENT_PROXYPASSWORD: 'proxy-password-4711',
        SECRET_SOME_VARIABLE: 'secret-variable-value',
        ENDPOINT_AUTH_PARAMETER_conn1_APITOKEN: 'dop_v1_endpoint_token',
      },
    );
    assert.match(stdout, /Agent\.ProxyPassword=\*\*\*/, 'task-lib echoed the variable (the redaction is what is tested)');
    for (const s of ['proxy-password-4711', 'secret-variable-value', 'dop_v1_endpoint_token']) {
      assert.ok(!stdout.includes(s) && !stderr.includes(s), `${s} leaked:\n${stdout}`);
    }
  });

  it("a proxy password with %, ; and ] is redacted in task-lib's escaped echo too (%AZP25, %3B, %5D)", () => {
    const password = 'proxy%pass;word]4711';
    const { stdout, stderr } = runWithOutputLayer(`require(${JSON.stringify(path.join(ROOT, 'node_modules', 'azure-pipelines-task-lib', 'task.js'))});`, {
      SYSTEM_DEBUG: 'true',
      AGENT_TEMPDIRECTORY: tempDir('output-agent-temp'),
      DISTRIBUTEDTASK_TASKS_NODE_SKIPDEBUGLOGSWHENDEBUGMODEOFF: 'false',
      AGENT_PROXYURL: 'http://127.0.0.1:9',
      AGENT_PROXYUSERNAME: 'proxyuser',
      AGENT_PROXYPASSWORD: password,
    });
    assert.match(stdout, /Agent\.ProxyPassword=\*\*\*/, stdout);
    for (const form of [password, 'proxy%AZP25pass', 'word%5D4711', 'pass%3Bword']) assert.ok(!(stdout + stderr).includes(form), `${form} leaked:\n${stdout}`);
  });

  it('an output is set only when its value fits its grammar', () => {
    const { stdout } = runWithOutputLayer(`
      out.setOutput('gcUuid', 'eff0feee-49c7-4e8f-ba5c-a320c109c8a8', { grammar: 'gcId' });
      out.setOutput('mediaTypes', 'application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json', { grammar: 'mediaType', list: true });
      for (const [name, value, grammar] of [['gcStatus', 'ok\\n##vso[task.setvariable variable=pwned]1', 'statusWord'], ['mediaTypes', 'text/html; $(rm -rf /)', 'mediaType'], ['digest', 'evil.io/x@sha256:abc', 'pinnedReference'], ['gcStartedAt', 'yesterday', 'timestamp']]) {
        try { out.setOutput(name, value, { grammar }); } catch (e) { out.info('refused ' + e.message); }
      }`);
    const outputs = parseOutput(stdout)
      .filter((c) => c.command === 'task.setvariable')
      .map((c) => c.properties['variable']);
    assert.deepStrictEqual(outputs, ['gcUuid', 'mediaTypes']);
    assert.strictEqual((stdout.match(/^refused Output '/gm) ?? []).length, 4, stdout);
  });
});
