// A registry's request to slow down, shared by the images Cosign@1 handles in parallel.
import { sleep } from '../../platform/retry';

/** A registry's 429 with Retry-After holds every image's next request to it, not only the one that got it. */
export class RegistryPause {
  private until = 0;

  /** Notes a wait the registry asked for. */
  hold(waitMs: number): void {
    this.until = Math.max(this.until, Date.now() + waitMs);
  }

  /** Resolves once the registry's last requested wait has passed. */
  async wait(signal: AbortSignal): Promise<void> {
    for (let left = this.until - Date.now(); left > 0; left = this.until - Date.now()) await sleep(left, signal);
  }
}
