// What the agent hands a task about its pipeline, for tests that run tasks
// against the emulator: a DigitalOcean service connection, the run's build
// timeline, and the Cosign@1 inputs of an offline attest through the
// emulator's registry front.
import type { Emulator } from './emulator';

/** The DigitalOcean service connection `id`, as the agent passes one (ENDPOINT_* variables). */
export function doEndpointEnv(emu: Emulator, id: string): Record<string, string> {
  return {
    [`ENDPOINT_URL_${id}`]: emu.apiUrl,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: 'Token', parameters: { apitoken: emu.token } }),
    [`ENDPOINT_AUTH_PARAMETER_${id}_APITOKEN`]: emu.token,
    [`ENDPOINT_AUTH_SCHEME_${id}`]: 'Token',
  };
}

/** The DigitalOcean service connection as a task's input and the agent's environment for it. */
export function doConnection(emu: Emulator, id = 'docr1'): { inputs: Record<string, string>; env: Record<string, string> } {
  return { inputs: { digitalOceanConnection: id }, env: doEndpointEnv(emu, id) };
}

/** This run's build timeline and the job's access token, as the agent exposes them. */
export function timelineEnv(emu: Emulator, currentStage?: string): Record<string, string> {
  return {
    SYSTEM_COLLECTIONURI: emu.collectionUri,
    SYSTEM_TEAMPROJECT: emu.project,
    BUILD_BUILDID: emu.buildId,
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: emu.buildAccessToken,
    ...(currentStage ? { SYSTEM_STAGENAME: currentStage } : {}),
  };
}

export interface AttestSetup {
  image: string;
  keys: { key: string; password: string; pub?: string };
  predicate: string;
  predicateType: string;
  cosignPath: string;
  /** The DigitalOcean connection id (credentials and guard). */
  doConnectionId: string;
}

/**
 * Cosign@1 inputs for an attest with a key, no transparency log, over the
 * emulator's plain-http front, with DigitalOcean credentials and quick
 * polling; `extra` adds or overrides inputs (settle, attempts, budget...).
 */
export function offlineAttestInputs(s: AttestSetup, extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'attest',
    images: s.image,
    key: s.keys.key,
    keyPassword: s.keys.password,
    ...(s.keys.pub ? { publicKey: s.keys.pub } : {}),
    predicate: s.predicate,
    predicateType: s.predicateType,
    cosignPath: s.cosignPath,
    tlogUpload: 'false',
    allowHttpRegistry: 'true',
    allowInsecureRegistry: 'true',
    digitalOceanConnection: s.doConnectionId,
    useDigitalOceanCredentials: 'true',
    registry: 'demo-registry',
    pollIntervalSeconds: '1',
    initialBackoffSeconds: '1',
    maxBackoffSeconds: '2',
    ...extra,
  };
}
