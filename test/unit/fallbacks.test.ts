// No silent fallbacks: an agent setting the tasks cannot use is one warning (not a quiet "no proxy"
// or "anonymous"), a private credentials folder that cannot be removed is one warning naming it, and
// every credential read from the agent's settings is a secret for redaction from then on. Each case
// runs in a child process that loads the output layer first, as a task does, and reads its commands.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readExistingDockerAuths } from '../../tasks/common/services/credentials';
import { redact } from '../../tasks/common/platform/output';
import { ROOT, tempDir } from '../harness/paths';
import { parseOutput } from '../harness/vso';

const OUT = path.join(ROOT, 'out', 'tasks', 'common');
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Runs `script` with the output layer loaded first; its agent commands. */
function inTaskProcess(script: string): ReturnType<typeof parseOutput> {
  const prelude = `const out = require(${JSON.stringify(path.join(OUT, 'platform', 'output.js'))});\n`;
  const r = spawnSync(process.execPath, ['-e', prelude + script], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' },
    encoding: 'utf8',
  });
  assert.strictEqual(r.status, 0, r.stderr);
  return parseOutput(r.stdout);
}

const warnings = (commands: ReturnType<typeof parseOutput>) => commands.filter((c) => c.command === 'task.logissue' && c.properties['type'] === 'warning');

describe('unit: no silent fallbacks (network.ts, credentials.ts)', () => {
  it('an Agent.ProxyUrl that is not a URL is one warning per run (read twice), and names no part of the value', () => {
    const commands = inTaskProcess(`
      const net = require(${JSON.stringify(path.join(OUT, 'platform', 'network.js'))});
      const a = net.parseProxy({ proxyUrl: 'http://user:proxy-pw-3c1@[not-a-host' });
      const b = net.parseProxy({ proxyUrl: 'http://user:proxy-pw-3c1@[not-a-host' });
      out.debug('parsed: ' + String(a) + ' ' + String(b));`);
    const w = warnings(commands);
    assert.strictEqual(w.length, 1, JSON.stringify(commands));
    assert.match(w[0].message, /Agent\.ProxyUrl is set but is not a URL: the tasks and cosign connect without a proxy/);
    assert.ok(!JSON.stringify(commands).includes('proxy-pw-3c1'));
    assert.ok(commands.some((c) => c.message === 'parsed: undefined undefined'));
  });

  it("the proxy's credentials and their Proxy-Authorization form are secrets once the proxy is read", () => {
    const commands = inTaskProcess(`
      const net = require(${JSON.stringify(path.join(OUT, 'platform', 'network.js'))});
      net.parseProxy({ proxyUrl: 'http://proxy.corp:3128', username: 'proxy-user', password: 'proxy-pw-77e' });
      out.debug('header Basic ${b64('proxy-user:proxy-pw-77e')} and proxy-pw-77e');`);
    assert.ok(
      commands.some((c) => c.message === 'header Basic *** and ***'),
      JSON.stringify(commands),
    );
    assert.strictEqual(warnings(commands).length, 0);
  });

  it('a private DOCKER_CONFIG that cannot be removed is one warning naming the folder; remove() does not throw', () => {
    const root = tempDir('creds-stuck');
    try {
      const commands = inTaskProcess(`
        const creds = require(${JSON.stringify(path.join(OUT, 'services', 'credentials.js'))});
        const h = creds.writePrivateDockerConfig({ 'r.io': { auth: '${b64('u:pw-stuck-1')}' } }, 'digitalocean', ${JSON.stringify(root)}, () => { throw new Error('EBUSY: resource busy'); });
        h.remove();
        out.debug('removed: ' + h.dir);`);
      const w = warnings(commands);
      assert.strictEqual(w.length, 1, JSON.stringify(commands));
      assert.match(
        w[0].message,
        /The private docker config .*cosign-docker-.* \(registry credentials\) could not be removed: EBUSY: resource busy\. Remove it by hand\./,
      );
      assert.ok(
        commands.some((c) => c.message.startsWith('removed: ')),
        'remove() returned',
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  describe("the agent's docker config", () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });
    function config(content: string | undefined): NodeJS.ProcessEnv {
      const dir = tempDir('agent-docker');
      dirs.push(dir);
      if (content !== undefined) fs.writeFileSync(path.join(dir, 'config.json'), content);
      return { DOCKER_CONFIG: dir };
    }

    it('no config file is anonymous access without a warning', () => {
      const heard: string[] = [];
      assert.deepStrictEqual(
        readExistingDockerAuths(config(undefined), (l) => heard.push(l)),
        {},
      );
      assert.deepStrictEqual(heard, []);
    });

    for (const [name, content] of [
      ['not JSON', '{"auths": {'],
      ['JSON null', 'null'],
      ['auths not an object', '{"auths": "r.io"}'],
    ]) {
      it(`a config that is ${name} is anonymous access with one warning naming the file`, () => {
        const heard: string[] = [];
        const env = config(content);
        assert.deepStrictEqual(
          readExistingDockerAuths(env, (l) => heard.push(l)),
          {},
        );
        assert.strictEqual(heard.length, 1);
        assert.ok(heard[0].includes(path.join(env.DOCKER_CONFIG!, 'config.json')) && /registry requests are anonymous/.test(heard[0]), heard[0]);
      });
    }

    it('a config that cannot be read (a folder in its place) is anonymous access with one warning', () => {
      const env = config(undefined);
      fs.mkdirSync(path.join(env.DOCKER_CONFIG!, 'config.json'));
      const heard: string[] = [];
      assert.deepStrictEqual(
        readExistingDockerAuths(env, (l) => heard.push(l)),
        {},
      );
      assert.strictEqual(heard.length, 1);
      assert.match(heard[0], /cannot be read .*registry requests are anonymous/);
    });

    it('its credentials (auth, password, username/password pairs) are secrets from the moment they are read', () => {
      const auth = b64('agent-user:agent-pw-4a0');
      const env = config(JSON.stringify({ auths: { 'r.io': { auth }, 'q.io': { username: 'other-user', password: 'other-pw-8b1' } } }));
      const auths = readExistingDockerAuths(env, () => assert.fail('no warning for a good config'));
      assert.deepStrictEqual(Object.keys(auths).sort(), ['q.io', 'r.io']);
      assert.strictEqual(redact(`${auth} agent-pw-4a0 other-pw-8b1 ${b64('other-user:other-pw-8b1')}`), '*** *** *** ***');
    });
  });
});
