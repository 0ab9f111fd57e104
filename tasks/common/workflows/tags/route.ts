// Which API removes an image: the DigitalOcean API only for an image on the DigitalOcean registry
// the connection names; any other image goes through its own registry's OCI distribution API, even
// when a DigitalOcean connection is configured (for the guard). A delete sent to the DigitalOcean
// API names a registry and repository, never a host: sending `ghcr.io/acme/app:1.0` there would
// delete `app:1.0` in a DigitalOcean registry called `acme`.
import { ImageReference } from '../../services/oci';

/** DigitalOcean Container Registry's host, as image references name it. */
export const DIGITALOCEAN_REGISTRY_HOST = 'registry.digitalocean.com';

export type CleanupRoute =
  { kind: 'digitalocean'; registry: string; repository: string; label: string; why?: string } | { kind: 'oci'; label: string; why?: string };

/**
 * The route of one image. `doRegistry` is the registry the connection names (undefined without a
 * DigitalOcean connection); `doHosts` are the hosts that registry answers on: its public host, and
 * the hosts DigitalOcean's own credentials were issued for.
 */
export function routeFor(ref: ImageReference, doRegistry: string | undefined, doHosts: readonly string[]): CleanupRoute {
  const oci: CleanupRoute = { kind: 'oci', label: `OCI distribution API of ${ref.registry}` };
  if (doRegistry === undefined) return oci;
  if (!doHosts.includes(ref.registry)) return { ...oci, why: 'not a host of the DigitalOcean registry' };
  const [registry, ...rest] = ref.repository.split('/');
  if (registry !== doRegistry || rest.length === 0) {
    return { ...oci, why: `not in the DigitalOcean registry '${doRegistry}' the connection names` };
  }
  return { kind: 'digitalocean', registry, repository: rest.join('/'), label: `DigitalOcean API (registry ${registry})` };
}
