// A Key Vault key's URL: https://<vault>.<the cloud's vault suffix>/keys/<name>[/<version>], nothing
// else (no port, user info, query or fragment). Vault names are 3 to 24 letters, digits and dashes,
// starting with a letter; key names 1 to 127 letters, digits and dashes; versions 32 hex digits.
import { UserError } from '../../platform/errors';
import { quote } from '../../platform/output';

/** Key Vault's DNS suffixes: public cloud, Azure China, Azure US Government, Azure Germany. */
export const VAULT_SUFFIXES = ['vault.azure.net', 'vault.azure.cn', 'vault.usgovcloudapi.net', 'vault.microsoftazure.de'];

export interface KeyVaultKeyRef {
  /** https://<vault>.<suffix> */
  vaultUrl: string;
  vaultHost: string;
  vaultName: string;
  name: string;
  /** undefined: the key's current version, learnt from Key Vault. */
  version?: string;
}

const SHAPE = 'https://<vault>.vault.azure.net/keys/<name>[/<version>]';

export function parseKeyVaultKey(value: string, inputName = 'keyVaultKey'): KeyVaultKeyRef {
  const bad = (why: string): never => {
    throw new UserError(`Input '${inputName}': '${quote(value, 200)}' ${why}; expected ${SHAPE}.`);
  };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return bad('is not a URL');
  }
  if (url.protocol !== 'https:') bad('is not an https URL');
  if (url.username || url.password || url.port || url.search || url.hash) bad('must have no user, port, query or fragment');
  const host = url.hostname.toLowerCase();
  const suffix = VAULT_SUFFIXES.find((s) => host.endsWith(`.${s}`));
  const vaultName = suffix ? host.slice(0, -suffix.length - 1) : '';
  if (!suffix || !/^[a-z][a-z0-9-]{1,22}[a-z0-9]$/.test(vaultName) || vaultName.includes('--')) bad('is not on a Key Vault host');
  const m = /^\/keys\/([A-Za-z0-9-]{1,127})(?:\/([0-9a-fA-F]{32}))?\/?$/.exec(url.pathname);
  if (!m) return bad('is not a key URL');
  return { vaultUrl: `https://${host}`, vaultHost: host, vaultName, name: m[1], version: m[2]?.toLowerCase() };
}

/** vault/name/version, as the summary and the log name a key. */
export function describeKey(ref: KeyVaultKeyRef, version = ref.version): string {
  return `${ref.vaultName}/${ref.name}/${version ?? '(current)'}`;
}
