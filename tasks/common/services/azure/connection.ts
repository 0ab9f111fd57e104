// The Azure Resource Manager service connection, as the agent passes one: the scheme must be
// WorkloadIdentityFederation (the pipeline holds no Azure secret; the job's OIDC token is exchanged
// for an access token), with the parameters serviceprincipalid and tenantid, and the cloud's
// authority host in the endpoint data (activeDirectoryAuthority, else environmentAuthorityUrl, else
// the public cloud's). A connection with a service principal secret or certificate, or a managed
// identity, is refused in one line. The job's OIDC endpoint is System.OidcRequestUri; it answers to
// the job's access token (System.AccessToken).
import { agentVariable, endpointAuthParameters, pipelineVariable } from '../../platform/agent';
import { UserError } from '../../platform/errors';
import { readEndpointAuthParam } from '../../platform/inputs';
import { quote } from '../../platform/output';

export interface AzureConnection {
  /** The service connection's id (the input's value), which the OIDC request names. */
  id: string;
  clientId: string;
  tenantId: string;
  /** The cloud's Entra ID authority host, ending with '/' (https://login.microsoftonline.com/ in the public cloud). */
  authorityHost: string;
  /** System.OidcRequestUri. */
  oidcRequestUri: string;
  /** System.AccessToken (a secret the output layer already redacts). */
  accessToken: string;
}

export const PUBLIC_CLOUD_AUTHORITY = 'https://login.microsoftonline.com/';
/** A directory (tenant) id: a GUID, or a verified domain name. */
const TENANT =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)$/i;
const CLIENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function scheme(id: string): string {
  const direct = agentVariable(`ENDPOINT_AUTH_SCHEME_${id}`);
  if (direct) return direct.trim();
  try {
    const blob = JSON.parse(agentVariable(`ENDPOINT_AUTH_${id}`) ?? '{}') as { scheme?: unknown };
    return typeof blob.scheme === 'string' ? blob.scheme.trim() : '';
  } catch {
    return '';
  }
}

function refuseScheme(id: string, found: string): never {
  const params = endpointAuthParameters(agentVariable(`ENDPOINT_AUTH_${id}`));
  const kind = /certificate/i.test(params['authenticationType'] ?? '') ? 'a certificate' : 'a secret';
  const what = /^serviceprincipal$/i.test(found)
    ? `uses a service principal with ${kind} (scheme ServicePrincipal)`
    : found
      ? `uses the scheme '${quote(found, 40)}'`
      : 'is not an Azure Resource Manager connection the agent passed to this step';
  throw new UserError(
    `Input 'azureSubscription': service connection ${quote(id, 60)} ${what}; Cosign@1 signs with Key Vault only through workload identity federation (no secret in the pipeline): convert the connection to workload identity federation.`,
  );
}

function authorityHost(id: string): string {
  const raw = (
    agentVariable(`ENDPOINT_DATA_${id}_ACTIVEDIRECTORYAUTHORITY`) ||
    agentVariable(`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`) ||
    PUBLIC_CLOUD_AUTHORITY
  ).trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`Service connection ${quote(id, 60)}: its authority URL '${quote(raw)}' is not a URL.`);
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) {
    throw new UserError(`Service connection ${quote(id, 60)}: its authority URL '${quote(raw)}' must be a plain https URL.`);
  }
  return url.origin + '/';
}

/** The connection `id`, checked before any request: the scheme, its ids, the authority, the job's OIDC endpoint. */
export function readAzureConnection(id: string): AzureConnection {
  const found = scheme(id);
  if (!/^workloadidentityfederation$/i.test(found)) refuseScheme(id, found);
  const clientId = readEndpointAuthParam(id, 'serviceprincipalid').trim();
  const tenantId = readEndpointAuthParam(id, 'tenantid').trim();
  if (!CLIENT_ID.test(clientId))
    throw new UserError(`Service connection ${quote(id, 60)}: its service principal id '${quote(clientId)}' is not an application (client) id.`);
  if (!TENANT.test(tenantId)) throw new UserError(`Service connection ${quote(id, 60)}: its tenant id '${quote(tenantId)}' is not a directory id.`);
  const oidcRequestUri = (pipelineVariable('System.OidcRequestUri') ?? '').trim();
  if (!oidcRequestUri) {
    throw new UserError(
      "System.OidcRequestUri is not set: workload identity federation needs a pipeline run on an agent of version 3.227 or later (the job's OIDC endpoint).",
    );
  }
  let oidc: URL;
  try {
    oidc = new URL(oidcRequestUri);
  } catch {
    throw new UserError(`System.OidcRequestUri '${quote(oidcRequestUri)}' is not a URL.`);
  }
  if (oidc.protocol !== 'https:') throw new UserError(`System.OidcRequestUri '${quote(oidcRequestUri)}' is not an https URL.`);
  const accessToken = (readEndpointAuthParam('SystemVssConnection', 'AccessToken') || pipelineVariable('System.AccessToken') || '').trim();
  if (!accessToken)
    throw new UserError("The job's access token (System.AccessToken) is not available: the OIDC token for 'azureSubscription' cannot be requested.");
  return { id, clientId, tenantId, authorityHost: authorityHost(id), oidcRequestUri, accessToken };
}
