// The hostile suite's property check, checked itself on synthetic runs: it must flag each kind of
// violation and pass a clean run (a checker that never fails would make every table pass).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { TaskRun } from '../harness/run-task';
import { taskOutcome } from '../harness/vso';
import { tempDir } from '../harness/paths';
import { Expect, violations } from './properties';

const SECRET = 'dop_v1_checker_secret_value';

function run(stdout: string, stderr = '', durationMs = 1000): TaskRun {
  return { code: 0, signal: null, stdout, stderr, ...taskOutcome(stdout), durationMs };
}

function check(stdout: string, over: Partial<Expect> = {}, stderr = '', durationMs = 1000): string[] {
  return violations(run(stdout, stderr, durationMs), { task: 'DoRegistryGcWaitV1', secrets: [SECRET], budgetS: 5, ...over });
}

const FAILED = '##vso[task.complete result=Failed;]one line\n';

describe('hostile: the property check itself', () => {
  it('passes a clean failed run', () => {
    assert.deepStrictEqual(check(`##vso[task.debug]x\nplain text\n##vso[task.setsecret]${SECRET}\n${FAILED}`), []);
  });
  const bad: Array<[string, string, string, Partial<Expect>?, string?, number?]> = [
    ['commands', 'a mid-line ##vso[', `GC is 'x ##vso[task.uploadfile]/etc/passwd'\n${FAILED}`],
    ['commands', 'a command after \\r', `status x\r##vso[task.uploadfile]/etc/passwd\n${FAILED}`],
    ['commands', 'a setvariable of a variable the task does not declare', `##vso[task.setvariable variable=pwned]1\n${FAILED}`],
    ['commands', 'a ##[ line', `##[error]pwned\n${FAILED}`],
    ['commands', '##vso[ in stderr', FAILED, {}, 'x ##vso[task.debug]y'],
    ['secrets', 'a secret in a debug line', `##vso[task.debug]token ${SECRET}\n${FAILED}`],
    ['secrets', 'a secret split by the ##vso escaping (%3B)', `##vso[task.debug]pass=abc%3Bdefghij\n${FAILED}`, { secrets: ['abc;defghij'] }],
    ['one line', 'a U+2028 in the result message', '##vso[task.complete result=Failed;]one\u2028two\n'],
    ['fail closed', 'a Succeeded result where Failed is due', '##vso[task.complete result=Succeeded;]ok\n'],
    ['fail closed', 'no result at all', 'nothing\n', { result: 'any' }],
    ['fail closed', 'an output outside its grammar', `##vso[task.setvariable variable=gcObservedStatus;isOutput=true;]a;b\n${FAILED}`],
    ['bounded time', 'a run past its budget', FAILED, {}, '', 16_000],
  ];
  for (const [property, what, stdout, over, stderr, ms] of bad) {
    it(`flags ${what} (${property})`, () => {
      const v = check(stdout, over, stderr, ms);
      assert.ok(
        v.some((x) => x.startsWith(`${property}:`)),
        `expected a '${property}' violation, got:\n${v.join('\n')}`,
      );
    });
  }
  it('flags a credential folder left in the agent temp folder', () => {
    const dir = tempDir('hostile-check');
    fs.mkdirSync(path.join(dir, 'cosign-docker-abc'));
    fs.writeFileSync(path.join(dir, 'summary.md'), '');
    const v = check(FAILED, { agentTemp: dir });
    assert.ok(v.some((x) => x.includes('cosign-docker-abc')) && !v.some((x) => x.includes('summary.md')), v.join('\n'));
  });
});
