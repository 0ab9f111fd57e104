// The one way a test may skip itself: on purpose, on a platform it names. Every such skip is
// recorded (out/test-totals/skip-*.json); the reporter fails the run for any skipped test that no
// record covers, so a test that skips itself on a fresh machine (a missing tool) is a failure.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

/** `linux`, or `linux-x64` for one architecture, as process.platform and process.arch name them. */
export type PlatformName = string;

/** Runs the test (or hook's suite) only on `platforms`; elsewhere skips it, recorded with `why`. */
export function onlyOn(ctx: Mocha.Context, platforms: PlatformName[], why: string): void {
  const here = [process.platform, `${process.platform}-${process.arch}`];
  if (platforms.some((p) => here.includes(p))) return;
  const runnable = ctx.currentTest ?? ctx.test;
  // From a hook, the whole suite is skipped: its title is the prefix of every test skipped.
  const title = ctx.currentTest ? ctx.currentTest.fullTitle() : (runnable?.parent?.fullTitle() ?? '');
  const dir = path.join(ROOT, 'out', 'test-totals');
  fs.mkdirSync(dir, { recursive: true });
  const record = { title, platforms, why, on: here[1] };
  fs.writeFileSync(path.join(dir, `skip-${process.pid}-${crypto.randomBytes(4).toString('hex')}.json`), JSON.stringify(record));
  ctx.skip();
}
