// Root hook plugin for mocha (load it with `--require`, i.e. "require" in .mocharc.json): after
// the WHOLE run, every output line of every bundled-task run (any test file that uses
// test/harness/run-task.ts) and every recorded child argv is scanned for the secrets the tests
// used (test/harness/secrets.ts). A leak anywhere fails the run ("after all" hook failure).
import { assertNoLeaks, scanThisProcess } from '../harness/secrets';

scanThisProcess();

export const mochaHooks = {
  afterAll(): void {
    assertNoLeaks();
  },
};
