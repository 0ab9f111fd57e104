// The official Azure SDK for JavaScript against the Azure emulator, as a child process (so that
// NODE_EXTRA_CA_CERTS, the test CA, and HTTPS_PROXY, the proxy that resolves the Azure names, apply
// from its start): AzurePipelinesCredential (OIDC token from System.OidcRequestUri, then Entra ID's
// client-credentials exchange with it as the assertion), then KeyClient.getKey and
// CryptographyClient.sign. Prints one JSON line: the public JWK's coordinates and the signature.
// Arguments: tenantId clientId serviceConnectionId keyUrl digestHex (System.AccessToken in CGG_ADO_TOKEN).
import { AzurePipelinesCredential } from '@azure/identity';
import { CryptographyClient, KeyClient, parseKeyVaultKeyIdentifier } from '@azure/keyvault-keys';

async function main(): Promise<void> {
  const [tenantId, clientId, serviceConnectionId, keyUrl, digestHex] = process.argv.slice(2);
  const credential = new AzurePipelinesCredential(tenantId, clientId, serviceConnectionId, process.env.CGG_ADO_TOKEN ?? '');
  const id = parseKeyVaultKeyIdentifier(keyUrl);
  const key = await new KeyClient(id.vaultUrl, credential).getKey(id.name, { version: id.version });
  const signed = await new CryptographyClient(key, credential).sign('ES256', Buffer.from(digestHex, 'hex'));
  const token = await credential.getToken('https://vault.azure.net/.default');
  process.stdout.write(
    JSON.stringify({
      kid: key.id,
      kty: key.keyType,
      crv: key.key?.crv,
      x: Buffer.from(key.key?.x ?? []).toString('base64url'),
      y: Buffer.from(key.key?.y ?? []).toString('base64url'),
      signature: Buffer.from(signed.result).toString('base64url'),
      tokenExpiresOn: token.expiresOnTimestamp,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`azure-sdk-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
