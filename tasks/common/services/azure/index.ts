// Azure for Cosign@1's keyVaultKey: the service connection (workload identity federation only), the
// key's URL, the tokens (OIDC, Entra ID) and Key Vault's keys get and sign.
export { AzureConnection, PUBLIC_CLOUD_AUTHORITY, readAzureConnection } from './connection';
export { KeyVaultKeyRef, VAULT_SUFFIXES, describeKey, parseKeyVaultKey } from './keyref';
export { AzureAnswerError, AzureTokenSource, REFRESH_MARGIN_MS } from './tokens';
export { CRYPTO_USER_ROLE, KeyVaultClient, KeyVaultPublicKey, classifyKeyVaultFailure, parseChallenge, rawToDer } from './keyvault';
