// Cosign@1 sign with keyVaultKey against Cosign@1 sign with a key file, on 12 new images each, side
// by side (alternating which goes first), measured on this machine with the real cosign 3.x and the
// real registry; the Azure emulator adds 30 ms to every Key Vault call (an Azure region away).
// The Key Vault path runs two cosign processes per image (generate, attach signature) and one Key
// Vault sign call, where the key-file path runs one (sign): the target allows that second process.
import { AzureFixture, azurePipelineEnv, startAzureFixture } from '../test/harness/azure-env';
import { generateKeyPair } from '../test/harness/keys';
import { tools } from '../test/harness/paths';
import { RealRegistry, pushTinyImages, startRegistry } from '../test/harness/registry';
import { agentEnv, runTask } from '../test/harness/run-task';
import type { BenchRow } from './types';
import { inTurn, median, printWhenRunDirectly } from './types';

const IMAGES = 12;
const KEY_VAULT_LATENCY_MS = 30;
/** Key Vault signing may take at most this many times key-file signing. */
const TARGET_RATIO = 2.0;
let repoSeq = 0;

function base(images: string[]): Record<string, string> {
  return {
    command: 'sign',
    images: images.join('\n'),
    cosignPath: tools.cosign3,
    tlogUpload: 'false',
    allowHttpRegistry: 'true',
    skipIfPresent: 'false',
    gcGuard: 'false',
  };
}

async function timed(inputs: Record<string, string>, env: Record<string, string>): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await runTask('CosignV1', { inputs, env, timeoutMs: 300_000 });
  if (r.result !== 'Succeeded') throw new Error(`Cosign@1 failed: ${r.resultMessage}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function run(): Promise<BenchRow[]> {
  const reg: RealRegistry = await startRegistry();
  const f: AzureFixture | undefined = await startAzureFixture({ keyVaultLatencyMs: KEY_VAULT_LATENCY_MS });
  if (!f) throw new Error('openssl is needed for the test CA');
  try {
    const keys = await generateKeyPair();
    const kvKey = f.emu.addEcKey('bench');
    const agent = agentEnv();
    const newImages = async () => (await pushTinyImages(reg.host, `bench/kv-${process.pid}-${++repoSeq}`, IMAGES)).refs;
    const keyVault = async () =>
      timed(
        { ...base(await newImages()), keyVaultKey: f.emu.keyUrl(kvKey.name), azureSubscription: f.emu.serviceConnectionId },
        { ...agent, ...azurePipelineEnv(f) },
      );
    // The key-file run gets the same agent proxy and CA, so only the signing differs.
    const keyFile = async () => timed({ ...base(await newImages()), key: keys.key, keyPassword: keys.password }, { ...agent, ...azurePipelineEnv(f) });
    await keyVault();
    await keyFile();
    const kv: number[] = [];
    const file: number[] = [];
    for (let i = 0; i < 3; i++) {
      await inTurn(
        i,
        async () => kv.push(await keyVault()),
        async () => file.push(await keyFile()),
      );
    }
    const ratio = median(kv) / median(file);
    return [
      {
        figure: `${IMAGES} images: Cosign@1 sign with keyVaultKey (emulated Key Vault, +${KEY_VAULT_LATENCY_MS} ms a call) / with a key file (median of 3)`,
        target: `≤ ${TARGET_RATIO.toFixed(2)}`,
        measured: `${ratio.toFixed(2)} (${median(kv).toFixed(0)} ms vs ${median(file).toFixed(0)} ms; ${(median(kv) / IMAGES).toFixed(0)} vs ${(median(file) / IMAGES).toFixed(0)} ms/image)`,
        pass: ratio <= TARGET_RATIO,
      },
    ];
  } finally {
    await f.stop();
    await reg.stop();
  }
}

if (require.main === module) printWhenRunDirectly(run);
