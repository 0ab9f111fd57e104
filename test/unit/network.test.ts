// The agent's network settings as a cosign child gets them (tasks/common/platform/network.ts): the
// proxy URL with its credentials encoded, the bypass regexes as Go's NO_PROXY, the CA bundle, and
// nothing at all without settings.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tls from 'tls';
import {
  ProxySettings,
  caBundle,
  childNetworkFrom,
  noProxyEntry,
  noProxyList,
  parseProxy,
  proxyUrlForChild,
  systemRootsPem,
} from '../../tasks/common/platform/network';
import { childEnv } from '../../tasks/common/platform/process';
import { ROOT, tempDir } from '../harness/paths';
import { testCaAndLeaf } from '../harness/tls';
import { onlyOn } from '../helpers/skip';

const proxy = (v: Parameters<typeof parseProxy>[0]): ProxySettings => {
  const p = parseProxy(v);
  assert.ok(p, 'the proxy parses');
  return p!;
};

describe('unit: the agent network settings for a child (network.ts)', () => {
  describe('the proxy URL', () => {
    it('separate credentials are URL-encoded into the user info; Go and WHATWG URL read them back as given', () => {
      const password = 'p@ss:w%rd/ ;]?#';
      const url = proxyUrlForChild(proxy({ proxyUrl: 'http://proxy.corp:3128', username: 'dom\\user', password }));
      assert.strictEqual(url, `http://dom%5Cuser:${encodeURIComponent(password)}@proxy.corp:3128/`);
      const back = new URL(url);
      assert.strictEqual(decodeURIComponent(back.username), 'dom\\user');
      assert.strictEqual(decodeURIComponent(back.password), password);
    });

    it("separate credentials replace the URL's own user info", () => {
      const url = proxyUrlForChild(proxy({ proxyUrl: 'http://old:older@proxy.corp:3128', username: 'new', password: 'newer' }));
      assert.strictEqual(url, 'http://new:newer@proxy.corp:3128/');
    });

    it("without separate credentials the URL is kept as given, its user info included (and Node's side reads it decoded)", () => {
      const p = proxy({ proxyUrl: ' http://u:p%40ss@proxy.corp:3128 ' });
      assert.strictEqual(proxyUrlForChild(p), 'http://u:p%40ss@proxy.corp:3128');
      assert.deepStrictEqual([p.username, p.password], ['u', 'p@ss']);
    });

    it('a username alone gives a user info without a password', () => {
      assert.strictEqual(proxyUrlForChild(proxy({ proxyUrl: 'http://proxy.corp:3128', username: 'only' })), 'http://only@proxy.corp:3128/');
    });

    it('no or an unreadable Agent.ProxyUrl is no proxy', () => {
      assert.strictEqual(parseProxy({}), undefined);
      assert.strictEqual(parseProxy({ proxyUrl: '  ' }), undefined);
      assert.strictEqual(parseProxy({ proxyUrl: 'http://' }), undefined);
    });
  });

  describe('the bypass list as NO_PROXY', () => {
    const cases: Array<[string, string | undefined]> = [
      ['example\\.com', 'example.com'],
      ['example.com', 'example.com'],
      ['.*\\.example\\.com', '.example.com'],
      ['^.*\\.example\\.com$', '.example.com'],
      ['(.*\\.)?example\\.com', 'example.com'],
      ['.*example\\.com', 'example.com'],
      ['https?://registry\\.corp\\.example(/.*)?', 'registry.corp.example'],
      ['^https://Registry\\.Corp/.*', 'registry.corp'],
      ['(https?:\\/\\/)?git\\.corp(:\\d+)?', 'git.corp'],
      ['registry\\.test:5000', 'registry.test:5000'],
      ['10\\.0\\.0\\.5', '10.0.0.5'],
      ['localhost', 'localhost'],
      ['.*', '*'],
      // No NO_PROXY form: skipped.
      ['.*\\.(corp|lan)', undefined],
      ['10\\.0\\.\\d+\\.\\d+', undefined],
      ['[a-z]+\\.example\\.com', undefined],
      ['a\\.com|b\\.com', undefined],
      ['example\\.com?', undefined],
      ['', undefined],
    ];
    for (const [pattern, want] of cases) {
      it(`${JSON.stringify(pattern)} → ${want === undefined ? 'skipped' : JSON.stringify(want)}`, () => {
        assert.strictEqual(noProxyEntry(pattern), want);
      });
    }

    it('the list joins what converts, once each, and names each pattern it skips', () => {
      const skipped: string[] = [];
      const list = noProxyList(['example\\.com', '.*\\.(corp|lan)', 'example\\.com', '.*\\.internal'], (why) => skipped.push(why));
      assert.strictEqual(list, 'example.com,.internal');
      assert.strictEqual(skipped.length, 1);
      assert.match(skipped[0], /"\.\*\\\\\.\(corp\|lan\)" has no NO_PROXY form/);
    });

    it('a pattern that is not a regular expression is skipped by both sides; an unreadable list bypasses nothing', () => {
      const skipped: string[] = [];
      const p = parseProxy({ proxyUrl: 'http://proxy.corp:3128', bypassList: JSON.stringify(['*.bad', 'good\\.corp']) }, (w) => skipped.push(w));
      assert.deepStrictEqual(p!.bypassPatterns, ['good\\.corp']);
      assert.ok(p!.bypass[0].test('https://GOOD.corp/v2/'), 'Node side: case-insensitive, on the whole URL');
      assert.match(skipped[0], /is not a regular expression/);
      assert.deepStrictEqual(parseProxy({ proxyUrl: 'http://proxy.corp:3128', bypassList: 'not json' })!.bypassPatterns, []);
    });
  });

  describe("the child's variables", () => {
    it('a proxy gives HTTPS_PROXY, HTTP_PROXY and NO_PROXY, and removes the lower-case names', () => {
      const n = childNetworkFrom({
        proxy: proxy({ proxyUrl: 'http://proxy.corp:3128', username: 'u', password: 'pw 1', bypassList: JSON.stringify(['.*\\.corp\\.example']) }),
      });
      assert.deepStrictEqual(n.set, {
        HTTPS_PROXY: 'http://u:pw%201@proxy.corp:3128/',
        HTTP_PROXY: 'http://u:pw%201@proxy.corp:3128/',
        NO_PROXY: '.corp.example',
      });
      const env = childEnv(
        { PATH: '/bin', https_proxy: 'http://elsewhere:1', no_proxy: '*', HTTPS_PROXY: 'http://elsewhere:2', INPUT_KEYPASSWORD: 'x' },
        { A: '1' },
        n,
      );
      assert.deepStrictEqual(env, { PATH: '/bin', ...n.set, A: '1' });
    });

    it('a proxy with another scheme (socks5) gives nothing and says why', () => {
      const why: string[] = [];
      const n = childNetworkFrom({ proxy: proxy({ proxyUrl: 'socks5://proxy.corp:1080' }), onSkip: (w) => why.push(w) });
      assert.deepStrictEqual(n, { set: {}, unset: [] });
      assert.match(why[0], /"socks5:"/);
    });

    it('no proxy and no CA: nothing added, nothing removed (a machine-wide HTTPS_PROXY still reaches cosign)', () => {
      const n = childNetworkFrom({});
      assert.deepStrictEqual(n, { set: {}, unset: [] });
      assert.deepStrictEqual(childEnv({ PATH: '/bin', https_proxy: 'http://machine:3128' }, {}, n), { PATH: '/bin', https_proxy: 'http://machine:3128' });
    });

    it('a CA gives SSL_CERT_FILE: the system roots, then the agent CA', () => {
      let written = '';
      const n = childNetworkFrom({ agentCa: 'AGENT-CA', systemRoots: () => 'ROOTS', write: (c) => ((written = c), '/tmp/x/ca-bundle.pem') });
      assert.deepStrictEqual(n.set, { SSL_CERT_FILE: '/tmp/x/ca-bundle.pem' });
      assert.strictEqual(written, 'ROOTS\nAGENT-CA\n');
      assert.strictEqual(caBundle('A\n', 'B'), 'A\nB\n');
    });

    it("the system roots are the bundle Go would read: the parent's SSL_CERT_FILE, else the first default file, else Node's roots", () => {
      const dir = tempDir('net-roots');
      const a = path.join(dir, 'a.pem');
      fs.writeFileSync(a, 'PARENT');
      assert.strictEqual(systemRootsPem(a), 'PARENT');
      assert.strictEqual(systemRootsPem(undefined, [path.join(dir, 'missing'), a]), 'PARENT');
      assert.strictEqual(systemRootsPem(undefined, [path.join(dir, 'missing')]), tls.rootCertificates.join('\n'));
    });

    it('as a task gets it: the bundle (0600, in a 0700 folder under the agent temp dir) holds the system roots and the CA, and is gone on exit', function () {
      onlyOn(this, ['linux'], 'the task child is checked through Linux file modes');
      const ca = testCaAndLeaf(['registry.test']);
      const temp = tempDir('net-agent-temp');
      const mod = (m: string) => JSON.stringify(path.join(ROOT, 'out', 'tasks', 'common', 'platform', m));
      const script = `require(${mod('output.js')});
        const { childEnv } = require(${mod('process.js')});
        const { runTask } = require(${mod('task.js')});
        const fs = require('fs'), path = require('path');
        runTask(() => null, async () => {
          const env = childEnv(process.env, {});
          const f = env.SSL_CERT_FILE;
          console.log('RESULT ' + JSON.stringify({ f, mode: fs.statSync(f).mode & 0o777, dirMode: fs.statSync(path.dirname(f)).mode & 0o777, content: fs.readFileSync(f, 'utf8'), proxy: env.HTTPS_PROXY ?? null }));
          return { outputs: {}, result: null };
        });`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { PATH: process.env['PATH'] ?? '', AGENT_TEMPDIRECTORY: temp, AGENT_CAINFO: ca!.caFile },
        encoding: 'utf8',
      });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, r.stdout + r.stderr);
      const got = JSON.parse(line!.slice(7)) as { f: string; mode: number; dirMode: number; content: string; proxy: string | null };
      assert.ok(got.f.startsWith(temp + path.sep), got.f);
      assert.strictEqual(got.mode, 0o600);
      assert.strictEqual(got.dirMode, 0o700);
      assert.ok(got.content.endsWith(ca!.caPem.endsWith('\n') ? ca!.caPem : ca!.caPem + '\n'), 'the agent CA comes last');
      assert.ok((got.content.match(/BEGIN CERTIFICATE/g) ?? []).length > 10, 'the system roots come first');
      assert.strictEqual(got.proxy, null, 'no proxy configured: none added');
      assert.deepStrictEqual(fs.readdirSync(temp), [], 'the bundle was removed on exit');
    });

    it('an Agent.CAInfo the task cannot read: one warning naming the file and what the task does without it, for both sides', () => {
      const temp = tempDir('net-agent-temp');
      const missing = path.join(temp, 'no-such-ca.pem');
      const mod = (m: string) => JSON.stringify(path.join(ROOT, 'out', 'tasks', 'common', 'platform', m));
      const script = `require(${mod('output.js')});
        const { childEnv } = require(${mod('process.js')});
        const { readAgentFile } = require(${mod('network.js')});
        const { runTask } = require(${mod('task.js')});
        runTask(() => null, async () => {
          const env = childEnv(process.env, {});
          const httpSide = readAgentFile('Agent.CAInfo', 'the HTTP side');
          console.log('RESULT ' + JSON.stringify({ certFile: env.SSL_CERT_FILE ?? null, httpSide: httpSide ?? null }));
          return { outputs: {}, result: null };
        });`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { PATH: process.env['PATH'] ?? '', AGENT_TEMPDIRECTORY: temp, AGENT_CAINFO: missing },
        encoding: 'utf8',
      });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, r.stdout + r.stderr);
      assert.deepStrictEqual(JSON.parse(line!.slice(7)), { certFile: null, httpSide: null });
      const warnings = r.stdout.split('\n').filter((l) => l.startsWith('##vso[task.logissue type=warning') && l.includes('Agent.CAInfo'));
      assert.strictEqual(warnings.length, 1, r.stdout);
      assert.ok(warnings[0].includes(`names "${missing}", which cannot be read (ENOENT): the task and cosign trust the system's roots only.`), warnings[0]);
    });
  });
});
