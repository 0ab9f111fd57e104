// Manual use: node out/test/harness/emulator/cli.js [--upstream http://127.0.0.1:5000] [--registries a,b] [--tail N]
// Starts the emulator, prints its URLs and tokens, and stops on SIGINT/SIGTERM.
import { startEmulator, EmulatorOptions } from '.';

function parseArgs(argv: string[]): EmulatorOptions {
  const opts: EmulatorOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--upstream':
        opts.upstreamRegistry = value();
        break;
      case '--registries':
        opts.registries = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '--tail':
        opts.tailSeconds = Number(value());
        if (!Number.isFinite(opts.tailSeconds) || opts.tailSeconds < 0) throw new Error('--tail needs a number of seconds >= 0');
        break;
      case '--token':
        opts.token = value();
        break;
      case '--legacy-only':
        opts.legacyOnly = true;
        break;
      case '-h':
      case '--help':
        console.log('usage: cli.js [--upstream URL] [--registries a,b] [--tail SECONDS] [--token T] [--legacy-only]');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument: ${a}`);
    }
  }
  return opts;
}

async function main(): Promise<void> {
  const emu = await startEmulator(parseArgs(process.argv.slice(2)));
  console.log(`DigitalOcean API : ${emu.apiUrl}`);
  console.log(`token endpoint   : ${emu.apiUrl}/v2/registry/auth`);
  console.log(`registry front   : ${emu.registryHost || '(none; pass --upstream URL)'}`);
  console.log(`registries       : ${emu.registries.join(', ')}`);
  console.log(`DO API token     : ${emu.token}`);
  console.log(`ADO collection   : ${emu.collectionUri}  project=${emu.project} buildId=${emu.buildId}`);
  console.log(`ADO access token : ${emu.buildAccessToken}`);
  console.log('Ctrl+C to stop.');
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    emu.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
