#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (`npm run build`).
import { main } from '../dist/hpcflow.js';

let done = false;
main(process.argv.slice(2)).then((code) => {
  done = true;
  process.exitCode = code;
});
// Node exits when nothing is left to wait on. If that happens before main() settled, a promise
// was never resolved (e.g. an engine connection that died without an error): that is a failure,
// never a silent exit 0.
process.on('beforeExit', () => {
  if (!done) {
    process.stderr.write('hpcflow: internal error: the command stopped before it finished (nothing left to wait on); this is a bug in hpcflow, please report it with the command you ran\n');
    process.exitCode = 70;
  }
});
