// What a cosign release is: its version grammar, its asset for this agent, the task's checksum
// table, and where each file of a release lives on a mirror.
import * as os from 'os';
import checksumTable from '../../data/cosign-checksums.json';
import { UserError } from '../../platform/errors';
import { quote } from '../../platform/output';

export const DEFAULT_COSIGN_VERSION: string = checksumTable.defaultVersion;

/** "3.0.6" or "v3.0.6" (optionally a pre-release suffix); no ranges, no "latest". */
export function normalizeVersion(input: string): string {
  const m = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(input.trim());
  if (!m) {
    throw new UserError(
      `Input 'version' must be an explicit cosign release such as 3.0.6 or v3.0.6, got '${quote(input)}' (ranges and 'latest' are refused so every run installs the same binary).`,
    );
  }
  return m[1];
}

export function normalizeChecksum(input: string): string {
  const v = input.trim().toLowerCase();
  if (v !== '' && !/^[0-9a-f]{64}$/.test(v)) {
    throw new UserError(`Input 'checksum' must be a sha256 of 64 hex digits, got '${quote(input)}'.`);
  }
  return v;
}

/** The numeric core of a normalized version ("3.0.1-rc.1" is [3, 0, 1]). */
function versionCore(version: string): [number, number, number] {
  const [major, minor, patch] = version.split('-')[0].split('.').map(Number);
  return [major, minor, patch];
}

/** a < b on the numeric core. */
export function versionBefore(a: string, b: string): boolean {
  const x = versionCore(a);
  const y = versionCore(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const SUPPORTED: Record<string, string[]> = {
  linux: ['amd64', 'arm64', 'arm', 'ppc64le', 's390x', 'riscv64'],
  darwin: ['amd64', 'arm64'],
  windows: ['amd64'],
};

export interface CosignPlatform {
  /** Key in the checksum table, e.g. "linux-amd64". */
  key: string;
  /** Release asset name, e.g. "cosign-linux-amd64" or "cosign-windows-amd64.exe". */
  asset: string;
  binaryName: string;
}

/** Maps Node's os.platform()/os.arch() to cosign's release asset. */
export function cosignPlatform(platform: string = os.platform(), arch: string = os.arch()): CosignPlatform {
  const goOs = platform === 'win32' ? 'windows' : platform;
  const goArch = GO_ARCH[arch] ?? arch;
  if (!SUPPORTED[goOs]?.includes(goArch)) {
    throw new UserError(
      `cosign publishes no binary for this agent's platform ${quote(platform)}/${quote(arch)}; supported: linux amd64/arm64/arm/ppc64le/s390x/riscv64, darwin amd64/arm64, windows amd64.`,
    );
  }
  const exe = goOs === 'windows' ? '.exe' : '';
  return { key: `${goOs}-${goArch}`, asset: `cosign-${goOs}-${goArch}${exe}`, binaryName: `cosign${exe}` };
}

export function tableChecksum(version: string, platformKey: string): string | undefined {
  const versions = checksumTable.versions as Record<string, Record<string, string | undefined>>;
  return versions[version]?.[platformKey];
}

export function releaseUrl(baseUrl: string, version: string, file: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v${version}/${file}`;
}
