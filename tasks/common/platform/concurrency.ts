// Bounded concurrency: at most `limit` pieces of work at a time, started in the order they asked.

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a whole number of at least 1, got ${limit}`);
  }

  /** Runs `work` once a slot is free; the slot is freed when it settles, whatever the outcome. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next in line, so `active` never exceeds the limit.
      if (next) next();
      else this.active--;
    }
  }

  /** Pieces of work running now. */
  get running(): number {
    return this.active;
  }
}
