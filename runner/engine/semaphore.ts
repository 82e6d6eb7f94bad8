/**
 * A weighted counting semaphore with FIFO wake-up: a waiter asking for more than is free blocks
 * those behind it, so a wide stage is never starved by a stream of narrow ones.
 */
export class Semaphore {
  private available: number;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  /** Take `n` units (clamped to the capacity, so an oversized request still runs, alone). */
  async acquire(n = 1): Promise<number> {
    const want = Math.max(1, Math.min(n, this.capacity));
    if (this.waiters.length === 0 && this.available >= want) {
      this.available -= want;
      return want;
    }
    await new Promise<void>((resolve) => this.waiters.push({ n: want, resolve }));
    return want;
  }

  release(n = 1): void {
    this.available += n;
    while (this.waiters.length > 0) {
      const head = this.waiters[0];
      if (head === undefined || head.n > this.available) break;
      this.waiters.shift();
      this.available -= head.n;
      head.resolve();
    }
  }
}
