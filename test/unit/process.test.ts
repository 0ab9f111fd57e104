// The child-process runner against a child that never prints a newline: memory stays bounded.
import * as assert from 'assert';
import { runProcess, signalGroup } from '../../tasks/common/platform/process';

describe('unit: the child-process runner', () => {
  it('a child printing 3 MiB without a newline is handed on in pieces of at most 64 KiB, and captured up to its cap', async () => {
    const pieces: number[] = [];
    const script = "const b = Buffer.alloc(64 * 1024, 0x61); for (let i = 0; i < 48; i++) process.stdout.write(b); process.stdout.write('\\nend\\n');";
    const o = await runProcess(process.execPath, ['-e', script], {
      env: { PATH: process.env['PATH'] ?? '' },
      timeoutMs: 20_000,
      onLine: (line) => pieces.push(line.length),
    });
    assert.strictEqual(o.code, 0);
    assert.ok(Math.max(...pieces) <= 64 * 1024, `a piece of ${Math.max(...pieces)} characters`);
    assert.strictEqual(
      pieces.reduce((a, b) => a + b, 0),
      48 * 64 * 1024 + 3,
      'every character reaches onLine once',
    );
    assert.ok(o.stdout.length <= (1 << 20) + 64 * 1024, `captured ${o.stdout.length} characters`);
  });
});

describe('unit: signalGroup with the platform injected', () => {
  function fakeChild(pid: number | undefined) {
    const calls: string[] = [];
    return { calls, child: { pid, kill: (sig?: NodeJS.Signals | number) => (calls.push(`child ${String(sig)}`), true) } };
  }

  it('Linux and macOS: the whole process group (a negative pid), not only the child', () => {
    for (const platform of ['linux', 'darwin'] as const) {
      const { calls, child } = fakeChild(4242);
      signalGroup(child, 'SIGTERM', platform, (pid, sig) => void calls.push(`group ${pid} ${sig}`));
      assert.deepStrictEqual(calls, ['group -4242 SIGTERM'], platform);
    }
  });

  it('Windows: the child itself (there are no process groups)', () => {
    const { calls, child } = fakeChild(4242);
    signalGroup(child, 'SIGKILL', 'win32', () => assert.fail('no group kill on Windows'));
    assert.deepStrictEqual(calls, ['child SIGKILL']);
  });

  it('a group already gone falls back to the child; a child never started is left alone', () => {
    const { calls, child } = fakeChild(7);
    signalGroup(child, 'SIGTERM', 'linux', () => {
      throw Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' });
    });
    assert.deepStrictEqual(calls, ['child SIGTERM']);
    const none = fakeChild(undefined);
    signalGroup(none.child, 'SIGTERM', 'linux', () => assert.fail('no pid, no kill'));
    assert.deepStrictEqual(none.calls, []);
  });
});
