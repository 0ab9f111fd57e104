// What the agent hands a task for keyVaultKey signing, against the Azure emulator: the Azure
// Resource Manager service connection (workload identity federation, or another scheme to be
// refused), the job's OIDC endpoint and access token, and the agent's proxy and CA, through which
// alone the Azure names resolve (to the emulator). Shared by the tests, the hostile suite and the bench.
import { AzureEmulator, AzureEmulatorOptions, startAzureEmulator } from './emulator/azure';
import { ForwardingProxy, startForwardingProxy } from './proxy';
import { registerSecret } from './secrets';
import { TestCa, testCaAndLeaf } from './tls';

const PROXY_USER = 'agent';

export interface AzureFixture {
  ca: TestCa;
  emu: AzureEmulator;
  proxy: ForwardingProxy;
  proxyPassword: string;
  stop(): Promise<void>;
}

/** A test CA and its leaf for the Azure names (undefined without openssl). */
export function azureTestCa(): TestCa | undefined {
  return testCaAndLeaf(['login.microsoftonline.com', 'dev.azure.com', '*.vault.azure.net']);
}

/** The emulator over TLS with a test CA, and a proxy that resolves its names; undefined without openssl. */
export async function startAzureFixture(options: Omit<AzureEmulatorOptions, 'tls'> = {}, existingCa?: TestCa): Promise<AzureFixture | undefined> {
  const ca = existingCa ?? azureTestCa();
  if (!ca) return undefined;
  const emu = await startAzureEmulator({ ...options, tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
  const proxyPassword = `proxy-${Math.random().toString(36).slice(2)}-pw`;
  registerSecret(proxyPassword);
  registerSecret(emu.systemAccessToken);
  const proxy = await startForwardingProxy({ user: PROXY_USER, password: proxyPassword, hosts: emu.proxyHosts });
  return {
    ca,
    emu,
    proxy,
    proxyPassword,
    stop: async () => {
      await proxy.close();
      await emu.stop();
    },
  };
}

/** The connection as the agent passes it (ENDPOINT_* variables); `scheme` other than WorkloadIdentityFederation for refusals. */
export function azureConnectionEnv(
  emu: AzureEmulator,
  options: { id?: string; scheme?: string; parameters?: Record<string, string> } = {},
): Record<string, string> {
  // The input's value is the connection's id, which the OIDC request names.
  const id = options.id ?? emu.serviceConnectionId;
  const scheme = options.scheme ?? 'WorkloadIdentityFederation';
  const parameters = { serviceprincipalid: emu.clientId, tenantid: emu.tenantId, ...(options.parameters ?? {}) };
  const env: Record<string, string> = {
    [`ENDPOINT_URL_${id}`]: 'https://management.azure.com/',
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme, parameters }),
    [`ENDPOINT_AUTH_SCHEME_${id}`]: scheme,
    [`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`]: emu.authorityHost,
    [`ENDPOINT_DATA_${id}_ENVIRONMENT`]: 'AzureCloud',
  };
  for (const [k, v] of Object.entries(parameters)) env[`ENDPOINT_AUTH_PARAMETER_${id}_${k.toUpperCase()}`] = v;
  return env;
}

/** The job's side: its OIDC endpoint and access token, the agent's proxy and CA; plus the connection. */
export function azurePipelineEnv(f: AzureFixture, connection = azureConnectionEnv(f.emu)): Record<string, string> {
  return {
    SYSTEM_OIDCREQUESTURI: f.emu.oidcRequestUri,
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: f.emu.systemAccessToken,
    AGENT_PROXYURL: f.proxy.url,
    AGENT_PROXYUSERNAME: PROXY_USER,
    AGENT_PROXYPASSWORD: f.proxyPassword,
    AGENT_CAINFO: f.ca.caFile,
    ...connection,
  };
}
