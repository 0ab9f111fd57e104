// Unit tests of the installer's release-signature verifier (tasks/common/tools/installer/signature.ts)
// on signatures made by others, with real keys, offline:
// - a Sigstore public-good bundle from the sigstore-conformance suite (test/fixtures/sigstore-conformance,
//   README there), verified against the trusted root the task ships; the same with one byte of the
//   artifact or of the bundle changed is refused, and so is the right bundle under cosign's identity;
// - a signature made with cosign's release key (the format cosign 2.0.0 to 3.0.0 publish as <asset>.sig):
//   the one cosign's release pipeline attached to its own v2.4.1 release image
//   (ghcr.io/sigstore/cosign/cosign, manifest sha256:b03690aa52bfe94054187142fba24dc54137650682810633901767d8a3e15b31):
//   the simple-signing payload (blob sha256:c6d2b5c70d78dc64e1cecfb3ac1deed33c4a84900c4a113cdb0a5736b718607c)
//   and its dev.cosignproject.cosign/signature annotation, base64 DER ECDSA over sha256 as sign-blob writes it;
// - the trustedRoot input's refusals.
// In a child process: loading the library loads the output layer, which must not touch mocha's process.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { sha256 } from '../harness/mirror';
import { ROOT, tempDir } from '../harness/paths';

const LIB = path.join(ROOT, 'out', 'tasks', 'common', 'tools', 'installer', 'signature.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'sigstore-conformance');
const BEACON =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
const COSIGN_V241_IMAGE_PAYLOAD =
  '{"critical":{"identity":{"docker-reference":"gcr.io/projectsigstore/cosign"},"image":{"docker-manifest-digest":"sha256:b03690aa52bfe94054187142fba24dc54137650682810633901767d8a3e15b31"},"type":"cosign container image signature"},"optional":{"GIT_HASH":"9a4cfe1aae777984c07ce373d97a65428bbff734","GIT_VERSION":"v2.4.1"}}';
const COSIGN_V241_IMAGE_SIGNATURE = 'MEUCIFLs3FPY+a//a0beXlXkprM08va4Y3YKdI9nxKG9l6pmAiEAr7IU2KP4BxcRt0IQxq57MXFIEqoK8SR3Ieuo5HI488Q=';

interface Verdict {
  ok?: string;
  refused?: string;
  error?: string;
}

/** Runs verifyReleaseSignature in a child; `root` '' is the shipped public-good root. */
function verify(dir: string, format: string, signature: Buffer, artifact: Buffer, identity: string, issuer: string, root = ''): Verdict {
  const files = { sig: path.join(dir, 'sig'), art: path.join(dir, 'art'), out: path.join(dir, 'out.json') };
  fs.writeFileSync(files.sig, signature);
  fs.writeFileSync(files.art, artifact);
  const code = `
    const fs = require('fs');
    const lib = require(${JSON.stringify(LIB)});
    (async () => {
    let v;
    try {
      const policy = await lib.trustPolicyFrom(${JSON.stringify(root)}, ${JSON.stringify(identity)}, ${JSON.stringify(issuer)});
      v = { ok: (await lib.verifyReleaseSignature(${JSON.stringify(format)}, fs.readFileSync(${JSON.stringify(files.sig)}), fs.readFileSync(${JSON.stringify(files.art)}), ${JSON.stringify(sha256(artifact))}, policy)).identity };
    } catch (e) {
      v = e.name === 'SignatureRefusal' ? { refused: e.message } : { error: e.message };
    }
    fs.writeFileSync(${JSON.stringify(files.out)}, JSON.stringify(v));
    })();`;
  const res = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env['PATH'] } });
  assert.strictEqual(res.status, 0, res.stderr);
  return JSON.parse(fs.readFileSync(files.out, 'utf8')) as Verdict;
}

/** The bytes with the one at `index` changed. */
function flipped(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

describe('installer release signatures (unit, real signatures made by others, offline)', function () {
  this.timeout(30_000);
  let dir = '';
  const bundle = fs.readFileSync(path.join(FIXTURES, 'happy-path-v0.3.sigstore.json'));
  const artifact = fs.readFileSync(path.join(FIXTURES, 'a.txt'));
  beforeEach(() => {
    dir = tempDir('unit-signature');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('a Sigstore public-good bundle (sigstore-conformance happy-path-v0.3) against the shipped trusted root', () => {
    it('verifies offline and names its signer', () => {
      assert.deepStrictEqual(verify(dir, 'bundle', bundle, artifact, BEACON, GITHUB_ISSUER), { ok: BEACON });
    });

    it('refuses the artifact with one byte changed', () => {
      const v = verify(dir, 'bundle', bundle, flipped(artifact, 20), BEACON, GITHUB_ISSUER);
      assert.match(
        v.refused ?? '',
        /bundle signs sha256 [0-9a-f]{64}, but the downloaded binary has sha256 [0-9a-f]{64} \(the binary or its bundle was altered\)$/,
        JSON.stringify(v),
      );
    });

    it('refuses the bundle with one byte of its signature changed', () => {
      const json = JSON.parse(bundle.toString('utf8')) as { messageSignature: { signature: string } };
      json.messageSignature.signature = flipped(Buffer.from(json.messageSignature.signature, 'base64'), 12).toString('base64');
      const v = verify(dir, 'bundle', Buffer.from(JSON.stringify(json)), artifact, BEACON, GITHUB_ISSUER);
      assert.match(v.refused ?? '', /transparency-log entry does not verify|signature does not match/, JSON.stringify(v));
    });

    it('refuses the bundle file with one byte of its log entry changed (integratedTime)', () => {
      const text = bundle.toString('utf8');
      const at = text.indexOf('"integratedTime": "') + '"integratedTime": "'.length + 9;
      assert.ok(at > 30, 'the fixture has an integratedTime');
      const v = verify(dir, 'bundle', flipped(bundle, at), artifact, BEACON, GITHUB_ISSUER);
      assert.match(v.refused ?? '', /transparency-log entry does not verify .*inclusion promise/, JSON.stringify(v));
    });

    it("refuses it under cosign's release identity: another identity signed it", () => {
      const v = verify(dir, 'bundle', bundle, artifact, 'keyless@projectsigstore.iam.gserviceaccount.com', 'https://accounts.google.com');
      assert.strictEqual(
        v.refused,
        `it is signed by '${BEACON}' (issuer '${GITHUB_ISSUER}'), not by 'keyless@projectsigstore.iam.gserviceaccount.com' (issuer 'https://accounts.google.com')`,
      );
    });
  });

  describe("cosign's release key (the <asset>.sig of cosign 2.0.0 to 3.0.0)", () => {
    const payload = Buffer.from(COSIGN_V241_IMAGE_PAYLOAD);
    const sig = Buffer.from(`${COSIGN_V241_IMAGE_SIGNATURE}\n`);
    const id = 'keyless@projectsigstore.iam.gserviceaccount.com';
    const iss = 'https://accounts.google.com';

    it('verifies a signature cosign made with it', () => {
      assert.strictEqual(sha256(payload), 'c6d2b5c70d78dc64e1cecfb3ac1deed33c4a84900c4a113cdb0a5736b718607c');
      assert.deepStrictEqual(verify(dir, 'release-key', sig, payload, id, iss), { ok: 'cosign-release-key' });
    });

    it('refuses the signed bytes with one byte changed, and a signature that is not base64', () => {
      assert.deepStrictEqual(verify(dir, 'release-key', sig, flipped(payload, 40), id, iss), {
        refused: "its signature is not a signature of the downloaded binary by cosign's release key",
      });
      assert.match(
        verify(dir, 'release-key', Buffer.from('<html>not found</html>'), payload, id, iss).refused ?? '',
        /^its signature file is not a base64 signature/,
      );
    });
  });

  describe('the trustedRoot input: a file that is not a usable root is refused in one line', () => {
    it('a missing file, a folder, not JSON, JSON that is not a trusted root', () => {
      const missing = path.join(dir, 'nope.json');
      const notJson = path.join(dir, 'root.txt');
      const notRoot = path.join(dir, 'empty.json');
      fs.writeFileSync(notJson, 'trusted?');
      fs.writeFileSync(notRoot, '{"mediaType":"x"}');
      const cases: [string, RegExp][] = [
        [missing, /^Input 'trustedRoot': '.*nope\.json' does not exist on the agent\.$/],
        [dir, /^Input 'trustedRoot': '.*' is a folder, not a Sigstore trusted_root\.json file\.$/],
        [notJson, /^Input 'trustedRoot': '.*root\.txt' is not JSON \(/],
        [notRoot, /^Input 'trustedRoot': the trusted root '.*empty\.json' is not a usable Sigstore trusted root \(.*no certificate authority/],
      ];
      for (const [file, want] of cases) {
        const v = verify(dir, 'bundle', bundle, artifact, BEACON, GITHUB_ISSUER, file);
        assert.match(v.error ?? '', want, JSON.stringify(v));
      }
    });
  });
});
