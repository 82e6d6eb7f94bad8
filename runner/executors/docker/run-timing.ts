/**
 * PURE: container timings from the engine's own timestamps.
 *
 * What we found on dockerd 20.10 (cgroup v1, runc 1.1), confirmed in moby's container/state.go:
 * `State.StartedAt` is `time.Now()` when the daemon marks the container running, i.e. right after
 * runc's start returned (the process has been exec'd by then); `State.FinishedAt` is containerd's
 * `ExitedAt` from the shim's exit event, when one is given. Both have nanosecond digits. Hence:
 * - commandMs = FinishedAt − StartedAt: a slight UNDER-estimate (StartedAt is stamped a little
 *   after the exec). For `true` it is 0–5 ms, and can even be negative (−0.7 ms seen: the process
 *   exited before the daemon stamped StartedAt) — reported as 0.
 * - startOverheadMs = StartedAt − (client clock at the create call): create + attach + start,
 *   ~90–130 ms with host networking here. Client and daemon share the host's realtime clock (we
 *   only talk to a local socket); when they disagree by > 1 s the client's own start-call
 *   round trip is used instead.
 * The `start` event's `timeNano` is stamped after StartedAt (once the state is saved), so it
 * adds nothing; client-side round trips (~100 ms) are far coarser than these stamps.
 */

/** Docker's "never" (a container that never started or never finished). */
const ZERO_TIME_PREFIX = '0001-01-01';

/**
 * Epoch milliseconds (with the sub-millisecond part kept as a fraction) from an RFC 3339 time
 * with up to nanosecond precision, e.g. `2026-11-24T19:52:50.74684773Z` or `…+01:00`.
 * null for Docker's zero time or anything unparsable.
 */
export function parseEngineTime(s: string | undefined | null): number | null {
  if (typeof s !== 'string' || s === '' || s.startsWith(ZERO_TIME_PREFIX)) return null;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m === null) return null;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(whole)) return null;
  const frac = m[2] ?? '';
  // Keep nanoseconds: "74684773" → 0.74684773 s → 746.84773 ms.
  const fracMs = frac === '' ? 0 : Number(`0.${frac}`) * 1000;
  return whole + fracMs;
}

export interface StageTimings {
  readonly startOverheadMs: number;
  readonly commandMs: number;
}

/** Rounds to microseconds: finer digits are noise, and it keeps records readable. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * @param createdAtMs  client wall clock (epoch ms, fractional) just before the create call
 * @param startedAt    State.StartedAt
 * @param finishedAt   State.FinishedAt
 * @param fallbackStartMs client wall clock when the start call returned (used when StartedAt is
 *                     missing or inconsistent with our clock)
 * @param endMs        client wall clock when the wait returned (fallback end)
 */
export function stageTimings(
  createdAtMs: number,
  startedAt: string | null | undefined,
  finishedAt: string | null | undefined,
  fallbackStartMs: number | null,
  endMs: number,
): StageTimings {
  const started = parseEngineTime(startedAt);
  const finished = parseEngineTime(finishedAt);
  // A daemon clock more than 1 s away from ours means another host/VM clock: do not mix them.
  const sane = started !== null && started >= createdAtMs - 1000 && started <= endMs + 1000;
  let startOverheadMs: number;
  if (sane) startOverheadMs = Math.max(0, started - createdAtMs);
  else if (fallbackStartMs !== null) startOverheadMs = Math.max(0, fallbackStartMs - createdAtMs);
  else startOverheadMs = 0;
  let commandMs: number;
  if (started !== null && finished !== null) commandMs = Math.max(0, finished - started);
  else if (fallbackStartMs !== null) commandMs = Math.max(0, endMs - fallbackStartMs);
  else commandMs = 0;
  return { startOverheadMs: roundMs(startOverheadMs), commandMs: roundMs(commandMs) };
}

/**
 * The client's realtime clock. Whole milliseconds, but the same clock the daemon stamps with;
 * `performance.timeOrigin + performance.now()` is finer but drifts from realtime in a long-lived
 * process (monotonic vs NTP-slewed), which would bias the create → StartedAt difference.
 */
export function wallClockMs(): number {
  return Date.now();
}
