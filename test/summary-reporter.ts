import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';
import { type FaultEntry, ledgerPath } from './helpers/fault-ledger.js';

/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own
 * summary, so any log reader (CI included) can tell how many tests ran without parsing vitest's
 * colored output. When fault scenarios ran (test/faults), it first prints their ledger: faults
 * injected, runs recovered and data lost, per scenario and in total.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: readonly TestModule[]): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++; // a file that failed to load
    }
    printFaultLedger();
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}

function printFaultLedger(): void {
  const file = ledgerPath(process.pid);
  if (!existsSync(file)) return;
  const rows = new Map<string, { injected: number; recovered: number; lost: number }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as FaultEntry;
    const r = rows.get(e.scenario) ?? { injected: 0, recovered: 0, lost: 0 };
    rows.set(e.scenario, { injected: r.injected + e.injected, recovered: r.recovered + e.recovered, lost: r.lost + e.lost });
  }
  rmSync(file, { force: true });
  const width = Math.max(8, ...[...rows.keys()].map((k) => k.length));
  const out = [`\nfault injection: ${rows.size} scenario${rows.size === 1 ? '' : 's'}`, `  ${'scenario'.padEnd(width)}  injected  recovered  lost`];
  const total = { injected: 0, recovered: 0, lost: 0 };
  for (const [name, r] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`  ${name.padEnd(width)}  ${String(r.injected).padStart(8)}  ${String(r.recovered).padStart(9)}  ${String(r.lost).padStart(4)}`);
    total.injected += r.injected;
    total.recovered += r.recovered;
    total.lost += r.lost;
  }
  out.push(`  ${'total'.padEnd(width)}  ${String(total.injected).padStart(8)}  ${String(total.recovered).padStart(9)}  ${String(total.lost).padStart(4)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
