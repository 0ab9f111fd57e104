// The child-process runner against a child that never prints a newline: memory stays bounded.
import * as assert from 'assert';
import { runProcess } from '../../tasks/common/platform/process';

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
