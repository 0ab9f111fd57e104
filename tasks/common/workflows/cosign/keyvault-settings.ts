// Cosign@1's keyVaultKey and azureSubscription inputs: what they need of each other and of the
// other inputs, checked before any request (the connection's scheme included).
import { UserError } from '../../platform/errors';
import { quote } from '../../platform/output';
import { AzureConnection, KeyVaultKeyRef, parseKeyVaultKey, readAzureConnection } from '../../services/azure';

export interface KeyVaultSettings {
  ref: KeyVaultKeyRef;
  connection: AzureConnection;
}

/**
 * cosign's predicate types whose predicate is JSON taken as it is; `custom` wraps the file as
 * {"Data", "Timestamp"}. These are the statement predicate types cosign writes for each alias.
 */
export const PREDICATE_TYPE_URIS: Record<string, string> = {
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  link: 'https://in-toto.io/Link/v1',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
};

interface KeyVaultInputs {
  command: string;
  key: string;
  publicKey: string;
  keyVaultKey: string;
  azureSubscription: string;
  predicateType: string;
}

/** undefined without keyVaultKey; else the key's URL and the connection, or a one-line error. */
export function keyVaultSettingsFrom(v: KeyVaultInputs): KeyVaultSettings | undefined {
  if (!v.keyVaultKey) {
    if (v.azureSubscription) throw new UserError("Input 'azureSubscription' is given but 'keyVaultKey' is empty: name the Key Vault key to sign with.");
    return undefined;
  }
  if (v.key) throw new UserError("Inputs 'key' and 'keyVaultKey' exclude each other: give one (keyVaultKey signs with an Azure Key Vault key).");
  // Another public key would make skipIfPresent and verifyAfter check a key that did not sign.
  if (v.publicKey) throw new UserError("Inputs 'publicKey' and 'keyVaultKey' exclude each other: with keyVaultKey the public key is read from Key Vault.");
  const ref = parseKeyVaultKey(v.keyVaultKey);
  if (!v.azureSubscription) {
    throw new UserError("Input 'azureSubscription' is required with 'keyVaultKey': an Azure Resource Manager connection with workload identity federation.");
  }
  if (v.command === 'attest' && !PREDICATE_TYPE_URIS[v.predicateType] && !/^https?:\/\/\S+$/.test(v.predicateType)) {
    throw new UserError(
      `Input 'predicateType': with 'keyVaultKey', attest takes a URI or one of ${Object.keys(PREDICATE_TYPE_URIS).join(', ')}; got '${quote(v.predicateType)}'.`,
    );
  }
  return { ref, connection: readAzureConnection(v.azureSubscription) };
}
