// The platforms CosignInstaller@1 supports (Node's platform/arch, the checksum table's key, the
// release asset) and some it refuses, plus the checksum table itself: shared by the L0 platform
// mapping tests and the unit test of cosignPlatform().
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from '../harness/paths';

export const PLATFORMS: { platform: string; arch: string; key: string; asset: string }[] = [
  { platform: 'linux', arch: 'x64', key: 'linux-amd64', asset: 'cosign-linux-amd64' },
  { platform: 'linux', arch: 'arm64', key: 'linux-arm64', asset: 'cosign-linux-arm64' },
  { platform: 'linux', arch: 'arm', key: 'linux-arm', asset: 'cosign-linux-arm' },
  { platform: 'linux', arch: 'ppc64', key: 'linux-ppc64le', asset: 'cosign-linux-ppc64le' },
  { platform: 'linux', arch: 's390x', key: 'linux-s390x', asset: 'cosign-linux-s390x' },
  { platform: 'linux', arch: 'riscv64', key: 'linux-riscv64', asset: 'cosign-linux-riscv64' },
  { platform: 'darwin', arch: 'x64', key: 'darwin-amd64', asset: 'cosign-darwin-amd64' },
  { platform: 'darwin', arch: 'arm64', key: 'darwin-arm64', asset: 'cosign-darwin-arm64' },
  { platform: 'win32', arch: 'x64', key: 'windows-amd64', asset: 'cosign-windows-amd64.exe' },
];
export const UNSUPPORTED: { platform: string; arch: string }[] = [
  { platform: 'freebsd', arch: 'x64' },
  { platform: 'linux', arch: 'ia32' },
  { platform: 'win32', arch: 'arm64' },
  { platform: 'darwin', arch: 'ppc64' },
  { platform: 'aix', arch: 'ppc64' },
];

export const CHECKSUM_TABLE = JSON.parse(fs.readFileSync(path.join(ROOT, 'tasks', 'common', 'data', 'cosign-checksums.json'), 'utf8')) as {
  defaultVersion: string;
  versions: Record<string, Record<string, string>>;
};
