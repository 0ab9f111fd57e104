// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, prependPath, setOutput } from '../common/platform/output';
import { readSettings } from '../common/platform/settings';
import { runTask } from '../common/platform/task';
import { INSTALLER_SETTINGS, installCosign, installRequestFrom } from '../common/tools/install';

void runTask(async (signal) => {
  const request = await installRequestFrom(readSettings(INSTALLER_SETTINGS));

  const result = await installCosign(request, signal, logger);
  // First on PATH, even when another cosign is there: later steps run the one verified here.
  prependPath(result.cosignDir);

  setOutput('cosignPath', result.cosignPath, { grammar: 'own' });
  setOutput('cosignVersion', result.version, { grammar: 'own' });
  setOutput('cosignSha256', result.sha256, { grammar: 'sha256Hex' });
  setOutput('cacheHit', result.cacheHit, { grammar: 'boolean' });
  setOutput('verifiedBy', result.verifiedBy, { grammar: 'own' });
  info(`cosign ${result.version} ready at ${result.cosignPath} (${result.cacheHit ? 'cache hit' : 'downloaded'}; verified by ${result.verifiedBy}).`);
  return { message: `cosign ${result.version} installed` };
});
