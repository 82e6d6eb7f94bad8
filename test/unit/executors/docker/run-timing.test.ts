import { describe, expect, it } from 'vitest';
import { parseEngineTime, stageTimings } from '../../../../runner/executors/docker/run-timing.js';

describe('parseEngineTime', () => {
  it('keeps sub-millisecond digits', () => {
    const a = parseEngineTime('2026-11-24T19:52:50.74684773Z');
    const b = parseEngineTime('2026-11-24T19:52:50.748334471Z');
    expect(a).not.toBeNull();
    expect((b as number) - (a as number)).toBeCloseTo(1.486741, 3);
    expect(parseEngineTime('2026-11-24T20:52:50+01:00')).toBe(Date.parse('2026-11-24T19:52:50Z'));
  });
  it('returns null for the zero time and garbage', () => {
    expect(parseEngineTime('0001-01-01T00:00:00Z')).toBeNull();
    expect(parseEngineTime('yesterday')).toBeNull();
    expect(parseEngineTime(undefined)).toBeNull();
  });
});

describe('stageTimings', () => {
  const created = Date.parse('2026-11-24T19:52:50.650Z');
  const end = created + 500;
  it('uses the engine stamps', () => {
    expect(stageTimings(created, '2026-11-24T19:52:50.746847730Z', '2026-11-24T19:52:50.748334471Z', null, end)).toEqual({
      startOverheadMs: 96.848,
      commandMs: 1.487,
    });
  });
  it('reports 0 when the exit was stamped before the start (sub-ms commands)', () => {
    expect(stageTimings(created, '2026-11-24T19:52:50.750Z', '2026-11-24T19:52:50.7493Z', null, end).commandMs).toBe(0);
  });
  it('falls back to client clocks when the daemon clock disagrees', () => {
    const t = stageTimings(created, '2020-01-01T00:00:00Z', '2020-01-01T00:00:01Z', created + 120, end);
    expect(t.startOverheadMs).toBe(120);
    expect(t.commandMs).toBe(1000);
  });
});
