/**
 * Shared by the property tests of hostile input: the seed and size of every property (fixed, so a
 * failure replays; HPCFLOW_FUZZ_SEED and HPCFLOW_FUZZ_RUNS override them, and fast-check prints
 * the seed of a failure), a property runner that counts for the fault ledger, and addressing and
 * replacing nodes of a plain value.
 */
import fc from 'fast-check';

export const SEED = Number(process.env.HPCFLOW_FUZZ_SEED ?? 20_261_125);
export const RUNS = Number(process.env.HPCFLOW_FUZZ_RUNS ?? 250);
export const FUZZ = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;

/** Runs a property over `arb`, counting inputs fed and inputs answered cleanly. */
export function fuzz<T>(arb: fc.Arbitrary<T>, check: (input: T) => void, runs = RUNS): { injected: number; recovered: number } {
  let injected = 0;
  let recovered = 0;
  fc.assert(
    fc.property(arb, (input) => {
      injected++;
      check(input);
      recovered++;
    }),
    { ...FUZZ, numRuns: runs },
  );
  return { injected, recovered };
}

/** Paths to the nodes of a value (not below `maxDepth`: a deeper nest is one node to mutate). */
export function valuePaths(v: unknown, maxDepth = Infinity, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (at.length >= maxDepth) return out;
  if (Array.isArray(v)) v.forEach((x, i) => valuePaths(x, maxDepth, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) valuePaths(x, maxDepth, [...at, k], out);
  return out;
}

/** `doc` with the node at `path` replaced (or, for `undefined`, removed). */
export function replaceAt(doc: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(doc)) return doc.map((x, i) => (i === head ? replaceAt(x, rest, value) : x)).filter((x) => x !== undefined);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(doc as Record<string, unknown>)) {
    const y = k === head ? replaceAt(x, rest, value) : x;
    if (y !== undefined) out[k] = y;
  }
  return out;
}
