/* global process */
// Turns `hpcflow run --json` event lines (stdin) into GitHub log groups (stdout), one per stage,
// and appends a Markdown summary to $GITHUB_STEP_SUMMARY. Plain Node, no dependencies.
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

// A stage's log line must not be taken for a workflow command (::set-output::, ::add-mask:: …).
const safe = (s) => String(s).replace(/^::/, ': :');
const rows = [];
let open = null;
let runId = null;
let ok = null;
const close = () => {
  if (open !== null) process.stdout.write('::endgroup::\n');
  open = null;
};
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    process.stdout.write(`${safe(line)}\n`);
    continue;
  }
  switch (e.type) {
    case 'run-start':
      runId = e.runId;
      process.stdout.write(`hpcflow run ${runId}: ${e.stages.length} stage(s)\n`);
      break;
    case 'stage-start':
      close();
      open = e.stage;
      process.stdout.write(`::group::${safe(e.stage)} (${e.action})\n`);
      break;
    case 'stage-log':
      if (open !== e.stage) {
        close();
        open = e.stage;
        process.stdout.write(`::group::${safe(e.stage)}\n`);
      }
      process.stdout.write(`${safe(e.line)}\n`);
      break;
    case 'stage-job':
      process.stdout.write(`[${e.stage}] Slurm job ${e.jobId}${e.adopted ? ' (adopted)' : ''}\n`);
      break;
    case 'stage-end':
      if (open === e.stage) close();
      rows.push([e.stage, e.outcome.status, (e.ms / 1000).toFixed(1)]);
      if (e.outcome.status === 'failed') process.stdout.write(`::error title=stage ${safe(e.stage)} failed::${safe(e.outcome.error).replace(/\r?\n/g, ' ')}\n`);
      break;
    case 'run-end':
      close();
      ok = e.summary.ok;
      process.stdout.write(`hpcflow run ${e.runId}: ${ok ? 'ok' : 'FAILED'} in ${(e.summary.wallMs / 1000).toFixed(1)} s\n`);
      break;
    default:
      break;
  }
}
close();
const summary = process.env.GITHUB_STEP_SUMMARY;
if (summary) {
  const cell = (s) => String(s).replace(/\|/g, '\\|');
  const lines = [
    `### hpcflow run ${runId ?? '(no run)'}: ${ok === null ? 'no result' : ok ? '✅ ok' : '❌ failed'}`,
    '',
    '| stage | outcome | seconds |',
    '| --- | --- | ---: |',
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    '',
    runId ? `Run record: \`.hpcflow/runs/${runId}.json\`` : '',
    '',
  ];
  appendFileSync(summary, lines.join('\n'));
}
if (runId && process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, `run-id=${runId}\n`);
