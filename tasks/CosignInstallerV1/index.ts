// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { readInt, readString, requireHttpUrl } from '../common/platform/inputs';
import {
  DEFAULT_COSIGN_VERSION,
  DEFAULT_DOWNLOAD_BASE_URL,
  DEFAULT_TIMEOUT_SECONDS,
  TIMEOUT_SECONDS_RANGE,
  cosignPlatform,
  installCosign,
  normalizeChecksum,
  normalizeVersion,
} from '../common/tools/install';
import { setOutput } from '../common/platform/output';
import { info, runTask } from '../common/platform/task';

void runTask(async (signal) => {
  const version = normalizeVersion(readString('version', { default: DEFAULT_COSIGN_VERSION }) || DEFAULT_COSIGN_VERSION);
  const checksum = normalizeChecksum(readString('checksum'));
  const baseUrl = requireHttpUrl(
    'downloadBaseUrl',
    readString('downloadBaseUrl', { default: DEFAULT_DOWNLOAD_BASE_URL }) || DEFAULT_DOWNLOAD_BASE_URL,
  ).toString();
  const timeoutSeconds = readInt('timeoutSeconds', DEFAULT_TIMEOUT_SECONDS, TIMEOUT_SECONDS_RANGE.min, TIMEOUT_SECONDS_RANGE.max);
  const platform = cosignPlatform();

  const result = await installCosign({ version, checksum, baseUrl, platform, timeoutSeconds }, signal);

  setOutput('cosignPath', result.cosignPath, { grammar: 'own' });
  setOutput('cosignVersion', result.version, { grammar: 'own' });
  setOutput('cosignSha256', result.sha256, { grammar: 'sha256Hex' });
  setOutput('cacheHit', result.cacheHit, { grammar: 'boolean' });
  info(`cosign ${result.version} ready at ${result.cosignPath} (${result.cacheHit ? 'cache hit' : 'downloaded'}).`);
  return { message: `cosign ${result.version} installed` };
});
