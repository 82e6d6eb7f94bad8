import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../../runner/engine/semaphore.js';

describe('Semaphore', () => {
  it('never hands out more than its capacity, and wakes waiters in order', async () => {
    const s = new Semaphore(2);
    const order: string[] = [];
    let inUse = 0;
    let peak = 0;
    const task = async (name: string, n: number, ms: number): Promise<void> => {
      const got = await s.acquire(n);
      inUse += got;
      peak = Math.max(peak, inUse);
      order.push(name);
      await new Promise((r) => setTimeout(r, ms));
      inUse -= got;
      s.release(got);
    };
    await Promise.all([task('a', 2, 20), task('b', 1, 5), task('c', 1, 5), task('wide', 5, 1)]);
    expect(peak).toBeLessThanOrEqual(2);
    expect(order).toEqual(['a', 'b', 'c', 'wide']);
  });
  it('a request above capacity is clamped (runs alone) instead of deadlocking', async () => {
    const s = new Semaphore(2);
    expect(await s.acquire(8)).toBe(2);
    s.release(2);
    expect(await s.acquire(1)).toBe(1);
  });
});
