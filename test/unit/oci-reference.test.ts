// The image reference grammar (tasks/common/services/oci.ts parseImageReference): every value is checked before
// any network call or child process, and a refusal is one line that names the input and quotes the value.
import * as assert from 'assert';
import { hostProblem, parseImageReference } from '../../tasks/common/services/oci';
import { UserError } from '../../tasks/common/platform/errors';

const D = 'sha256:' + 'c'.repeat(64);

function refused(value: string, why: RegExp): void {
  assert.throws(
    () => parseImageReference(value, 'images'),
    (err: unknown) => {
      assert.ok(err instanceof UserError, `${JSON.stringify(value)}: ${String(err)}`);
      assert.match(err.message, /^Input 'images': '/);
      assert.match(err.message, why, `${JSON.stringify(value)}: ${err.message}`);
      assert.ok(!/[\r\n\u2028\u2029]/.test(err.message), `one line: ${JSON.stringify(err.message)}`);
      assert.ok(!err.message.includes('##vso['), err.message);
      return true;
    },
  );
}

describe('image reference grammar (oci.ts)', () => {
  it('accepts domain, IPv4, [IPv6] and localhost hosts with ports 1 to 65535', () => {
    const cases: Array<[string, string, string, string | undefined]> = [
      ['registry.digitalocean.com/acme/app:1.2.3', 'registry.digitalocean.com', 'acme/app', '1.2.3'],
      ['127.0.0.1:5000/demo/app', '127.0.0.1:5000', 'demo/app', 'latest'],
      ['[::1]:5000/demo/app:v1', '[::1]:5000', 'demo/app', 'v1'],
      ['[2001:db8::1]/x/y', '[2001:db8::1]', 'x/y', 'latest'],
      ['localhost/x', 'localhost', 'x', 'latest'],
      ['my-host.example:1/a/b_c/d__e/f-g/h--i/j.k:Tag_1.0-rc', 'my-host.example:1', 'a/b_c/d__e/f-g/h--i/j.k', 'Tag_1.0-rc'],
      ['r.io:65535/a:' + 'x'.repeat(128), 'r.io:65535', 'a', 'x'.repeat(128)],
      ['alpine', 'docker.io', 'library/alpine', 'latest'],
    ];
    for (const [v, registry, repository, tag] of cases) {
      const r = parseImageReference(v);
      assert.deepStrictEqual([r.registry, r.repository, r.tag], [registry, repository, tag], v);
    }
    assert.strictEqual(parseImageReference(`r.io/a@${D}`).digest, D);
    assert.strictEqual(parseImageReference(`r.io/a:t@${D}`).tag, 't');
  });

  it("refuses what cosign would read as a flag: anything starting with '-'", () => {
    refused('--output-signature=./x', /starts with '-'/);
    refused('-x.y/z', /starts with '-'/);
    refused('-', /starts with '-'/);
  });

  it('refuses hosts outside the grammar and ports outside 1 to 65535', () => {
    refused('host:99999/a/b:1', /port must be 1 to 65535/);
    refused('host.io:0/a:1', /port must be 1 to 65535/);
    refused('a.b?x=1/repo:1', /registry host is not a valid domain name/);
    refused('-bad.io/a', /starts with '-'/);
    refused('bad-.io/a', /not a valid domain name/);
    refused('a..b/c', /not a valid domain name/);
    refused('999.1.1.1:5000/a', /not a valid IPv4 address/);
    refused('[::g]:5000/a', /not a valid \[IPv6\] address/);
    refused('host.io:abc/a', /not host\[:port\]|tag|not valid/);
    refused('user@host.io/a', /digest/);
  });

  it('refuses path components, tags and digests outside the grammar', () => {
    refused('r.io/UPPER/case', /repository/);
    refused('UPPER/case', /repository 'UPPER\/case'/);
    refused('r.io/a//b', /repository/);
    refused('r.io/a_/b', /repository/);
    refused('r.io/a/.b', /repository/);
    refused('r.io/a___b', /repository/);
    refused('r.io/a:' + 'x'.repeat(129), /tag/);
    refused('r.io/a:-tag', /tag/);
    refused('r.io/a:.tag', /tag/);
    refused('r.io/a@sha256:' + 'C'.repeat(64), /digest/);
    refused('r.io/a@sha512:' + 'c'.repeat(128), /digest/);
    refused('r.io/a@sha256:' + 'c'.repeat(63), /digest/);
  });

  it('refuses a name longer than 255 characters (tag and digest not counted)', () => {
    const name = `r.io/${'a'.repeat(250)}`;
    assert.strictEqual(name.length, 255);
    assert.strictEqual(parseImageReference(`${name}:t@${D}`).repository.length, 250);
    refused(`${name}b:t`, /longer than 255/);
  });

  it('quotes hostile values on one line, with agent commands neutralised', () => {
    refused('r.io/a:t\u2028##vso[task.setvariable variable=x]y', /contains spaces|not valid/);
    refused('r.io/##vso[task.complete]', /##vso_\[/);
    refused('r.io/a\u0000b', /\\x00/);
  });

  it('hostProblem: the host grammar on its own', () => {
    for (const ok of ['a', 'a.b', 'a-b.c', '1.2.3.4', '1.2.3.4:1', '[::1]', '[::1]:65535', 'x:65535']) assert.strictEqual(hostProblem(ok), undefined, ok);
    for (const bad of ['', 'a:65536', 'a:0', '-a', 'a-', 'a_b', '[::1', '1.2.3.256', 'a:b:c']) assert.ok(hostProblem(bad), bad);
  });
});
