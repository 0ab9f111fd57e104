import { readString, requireHttpUrl } from '../common/inputs';
import { DEFAULT_COSIGN_VERSION, DEFAULT_DOWNLOAD_BASE_URL, installCosign, normalizeChecksum, normalizeVersion, cosignPlatform } from '../common/install';
import { info, runTask, setOutput } from '../common/vso';

runTask(async (signal) => {
  const version = normalizeVersion(readString('version', { default: DEFAULT_COSIGN_VERSION }) || DEFAULT_COSIGN_VERSION);
  const checksum = normalizeChecksum(readString('checksum'));
  const baseUrl = requireHttpUrl('downloadBaseUrl', readString('downloadBaseUrl', { default: DEFAULT_DOWNLOAD_BASE_URL }) || DEFAULT_DOWNLOAD_BASE_URL).toString();
  const platform = cosignPlatform();

  const result = await installCosign({ version, checksum, baseUrl, platform }, signal);

  setOutput('cosignPath', result.cosignPath);
  setOutput('cosignVersion', result.version);
  setOutput('cosignSha256', result.sha256);
  setOutput('cacheHit', result.cacheHit);
  info(`cosign ${result.version} ready at ${result.cosignPath} (${result.cacheHit ? 'cache hit' : 'downloaded'}).`);
  return { message: `cosign ${result.version} installed` };
});
