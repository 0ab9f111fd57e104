// The DigitalOcean connection a task was given: a service connection (token + API URL) or the
// DIGITALOCEAN_ACCESS_TOKEN environment variable. The token is only ever read, never printed.
import { UserError } from '../../platform/errors';
import { quote } from '../../platform/output';
import { readEndpointAuthParam, readEndpointUrl, requireHttpUrl } from '../../platform/inputs';
import { agentVariable } from '../../platform/agent';

/** DigitalOcean's own pattern for registry names. */
export const REGISTRY_NAME_PATTERN = /^[a-z0-9-]{1,63}$/;
export const DEFAULT_DO_API_URL = 'https://api.digitalocean.com';

export interface DoConnection {
  token: string;
  apiUrl: string;
  source: 'connection' | 'env';
}

/** Fails with one line naming the input when a registry name is not a DigitalOcean name. */
export function validateRegistryName(inputName: string, value: string): string {
  if (value !== '' && !REGISTRY_NAME_PATTERN.test(value)) {
    throw new UserError(
      `Input '${inputName}' must be a DigitalOcean registry name (lower-case letters, digits and '-', 1 to 63 characters), got '${quote(value)}'.`,
    );
  }
  return value;
}

/**
 * The connection `endpointId` names (the `inputName` input's value: its URL and apitoken), else
 * DIGITALOCEAN_ACCESS_TOKEN with https://api.digitalocean.com (or DIGITALOCEAN_API_URL if set).
 * undefined when neither (a UserError when required). Never logs the token.
 */
export function doConnectionFrom(inputName: string, endpointId: string, required: boolean): DoConnection | undefined {
  if (endpointId !== '') {
    const token = readEndpointAuthParam(endpointId, 'apitoken').trim();
    if (token === '') {
      throw new UserError(`Input '${inputName}': the service connection '${endpointId}' has no API token (apitoken).`);
    }
    const url = readEndpointUrl(endpointId).trim() || DEFAULT_DO_API_URL;
    requireHttpUrl(`${inputName} (server URL)`, url);
    return { token, apiUrl: url.replace(/\/+$/, ''), source: 'connection' };
  }
  const envToken = (agentVariable('DIGITALOCEAN_ACCESS_TOKEN') ?? '').trim();
  if (envToken !== '') {
    const url = (agentVariable('DIGITALOCEAN_API_URL') ?? '').trim() || DEFAULT_DO_API_URL;
    requireHttpUrl('DIGITALOCEAN_API_URL', url);
    return { token: envToken, apiUrl: url.replace(/\/+$/, ''), source: 'env' };
  }
  if (required) {
    throw new UserError(
      `Input '${inputName}' is required: choose a DigitalOcean API service connection, or set the DIGITALOCEAN_ACCESS_TOKEN environment variable.`,
    );
  }
  return undefined;
}
