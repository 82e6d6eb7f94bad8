import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { createLineSplitter, createOutputPressure, MAX_LINE_CHARS } from '../../runner/executors/docker/log-lines.js';
import { BIN, hpcflow } from '../helpers/cli.js';
import { recordFaults } from '../helpers/fault-ledger.js';

/**
 * Huge stage output is streamed, not buffered. One stage writes 300 MB to stdout in 1,000-byte
 * lines, another 64 MiB without a single newline. The run completes; the runner's peak resident
 * set size (measured by the process itself at exit) stays below 200 MB whatever the volume (a
 * bare run peaks around 90 MB), also when the runner's stdout is a pipe whose reader is slow
 * (here: starts 3 s late) — the stage is held back instead; every byte reaches the runner's log
 * (that pipe, written to a file), with a line longer than 64 KiB passed on in pieces; and the
 * engine keeps no second copy on disk (the container's log driver is "none").
 */
const LINES = 300_000;
const LINE_BYTES = 1000;
const ONE_LINE_BYTES = 64 * 1024 * 1024;
const RSS_BOUND_MB = 200;

let ws: string;
let tools: string;

beforeAll(async () => {
  ws = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-logs-'));
  tools = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-logs-tools-'));
  await mkdir(join(ws, 'pipelines'));
  await writeFile(join(tools, 'peak-rss.mjs'), "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(process.env.PEAK_RSS_FILE, String(process.resourceUsage().maxRSS)));\n");
  await writeFile(
    join(ws, 'pipelines/hostile-logs.yaml'),
    [
      'stages:',
      '  lines:',
      '    image: hpcflow-test/busybox:1',
      `    cmd: yes "$(printf '%0${LINE_BYTES - 1}d' 7)" | head -c ${LINES * LINE_BYTES}; echo done > lines.txt`,
      '    outs: [lines.txt]',
      '  oneline:',
      '    image: hpcflow-test/busybox:1',
      `    cmd: head -c ${ONE_LINE_BYTES} /dev/zero | tr '\\0' x; echo done > oneline.txt`,
      '    outs: [oneline.txt]',
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await rm(ws, { recursive: true, force: true });
  await rm(tools, { recursive: true, force: true });
});

/** The log driver and log file of the running containers of this workspace's stages, polled until `done`. */
async function watchLogConfig(done: () => boolean): Promise<Set<string>> {
  const seen = new Set<string>();
  while (!done()) {
    const ids: string[] = [];
    for (const stage of ['lines', 'oneline']) {
      const ps = await execa('docker', ['ps', '-q', '--no-trunc', '--filter', `label=hpcflow.stage=hostile-logs/${stage}`], { reject: false });
      ids.push(...ps.stdout.split('\n').filter(Boolean));
    }
    for (const id of ids) {
      const i = await execa('docker', ['inspect', '--format', '{{.HostConfig.LogConfig.Type}}|{{.LogPath}}', id], { reject: false });
      if (i.exitCode === 0) seen.add(i.stdout.trim());
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

describe('huge stage output', () => {
  it('300 MB of lines and 64 MiB without a newline: streamed to the log in bounded memory', { timeout: 240_000 }, async () => {
    const logFile = join(tools, 'run.log');
    const rssFile = join(tools, 'peak-rss');
    const t0 = Date.now();
    let finished = false;
    // The runner's stdout is a pipe whose reader starts late (as a slow log collector would):
    // what the runner cannot write must hold the stage back, not pile up in its memory.
    const child = spawn('node', ['--import', join(tools, 'peak-rss.mjs'), BIN, 'run', '-j', '2'], {
      cwd: ws,
      env: { ...process.env, CI: '1', PEAK_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const logConfigs = watchLogConfig(() => finished);
    await new Promise((r) => setTimeout(r, 3000));
    const written = pipeline(child.stdout, createWriteStream(logFile));
    const code = await exited;
    await written;
    finished = true;
    const seconds = (Date.now() - t0) / 1000;
    const peakMB = Number(await readFile(rssFile, 'utf8')) / 1024;
    const logMB = (await stat(logFile)).size / 2 ** 20;
    console.log(`huge log: run took ${seconds.toFixed(1)} s, runner peak RSS ${peakMB.toFixed(0)} MB, runner log ${logMB.toFixed(0)} MB on disk`);
    expect(code, stderr).toBe(0);
    expect(peakMB).toBeLessThan(RSS_BOUND_MB);
    expect(existsSync(join(ws, 'lines.txt')) && existsSync(join(ws, 'oneline.txt'))).toBe(true);

    // Every byte of both streams is in the log, prefixed with its stage; no line over 64 KiB.
    let lines = 0;
    let pieces = 0;
    let xs = 0;
    let longest = 0;
    const expected = `${'0'.repeat(LINE_BYTES - 2)}7`;
    for await (const line of createInterface({ input: createReadStream(logFile, 'utf8'), crlfDelay: Infinity })) {
      const m = /^\S+ \[hostile-logs\/(lines|oneline)\] (.*)$/s.exec(line);
      if (m === null) continue;
      const text = m[2] as string;
      longest = Math.max(longest, text.length);
      if (m[1] === 'lines' && text === expected) lines++;
      if (m[1] === 'oneline' && /^x+$/.test(text)) {
        pieces++;
        xs += text.length;
      }
    }
    expect(lines).toBe(LINES);
    expect(xs).toBe(ONE_LINE_BYTES);
    expect(pieces).toBe(ONE_LINE_BYTES / MAX_LINE_CHARS);
    expect(longest).toBe(MAX_LINE_CHARS);

    // The engine was told not to keep a log file of the container (output reaches us by attach).
    const configs = await logConfigs;
    for (const c of configs) expect(c).toBe('none|');
    console.log(`huge log: container log configs seen while running: ${[...configs].join(', ') || '(none sampled)'}`);
    recordFaults({ scenario: 'huge stage output (300 MB lines + 64 MiB one line)', injected: 2, recovered: 2, lost: 0 });
  });
});

describe('huge image build output', () => {
  it('a build step printing 300 KB without a newline: the build and the stage complete, the log comes in pieces', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hpcflow-hostile-build-'));
    const label = `hostile-logs-test=${process.pid}`;
    try {
      await mkdir(join(dir, 'pipelines'));
      await mkdir(join(dir, 'containers/noisy'), { recursive: true });
      await writeFile(join(dir, 'containers/noisy/Dockerfile'), `FROM hpcflow-test/busybox:1\nLABEL ${label}\nRUN head -c 300000 /dev/zero | tr '\\0' x\n`);
      await writeFile(join(dir, 'pipelines/p.yaml'), 'stages:\n  a:\n    image: { build: noisy }\n    cmd: echo ok > ok.txt\n    outs: [ok.txt]\n');
      const r = await hpcflow(['run'], dir);
      expect(r.code, r.stderr).toBe(0);
      // (The engine appends its next message to an unterminated last line: count the x's that lead.)
      const pieces = r.stdout.split('\n').flatMap((l) => / \[image\] (x+)/.exec(l)?.[1]?.length ?? []);
      expect(pieces.reduce((a, b) => a + b, 0)).toBe(300_000);
      expect(Math.max(...pieces)).toBeLessThanOrEqual(MAX_LINE_CHARS);
      recordFaults({ scenario: 'image build printing a 300 KB line', injected: 1, recovered: 1, lost: 0 });
    } finally {
      const ids = (await execa('docker', ['images', '-q', '--filter', `label=${label}`], { reject: false })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await execa('docker', ['rmi', '-f', ...new Set(ids)], { reject: false });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the line splitter and output backpressure (in-process)', () => {
  it('splits a line without end in linear time, in pieces, never between a surrogate pair', () => {
    const out: string[] = [];
    const s = createLineSplitter((l) => out.push(l));
    const chunk = Buffer.alloc(32 * 1024, 'x');
    const t0 = Date.now();
    for (let i = 0; i < 1024; i++) s.push(chunk); // 32 MiB, no newline (was quadratic: minutes)
    s.flush();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(out.length).toBe((32 * 1024 * 1024) / MAX_LINE_CHARS);
    expect(out.every((l) => l.length === MAX_LINE_CHARS)).toBe(true);

    // An astral character (two UTF-16 units) at the cut: the piece ends before it.
    const pieces: string[] = [];
    const t = createLineSplitter((l) => pieces.push(l));
    t.push(Buffer.from(`${'a'.repeat(MAX_LINE_CHARS - 1)}😀tail\r\nnext\n`));
    t.flush();
    expect(pieces).toEqual(['a'.repeat(MAX_LINE_CHARS - 1), '😀tail', 'next']);
    recordFaults({ scenario: 'log line without end (in-process)', injected: 2, recovered: 2, lost: 0 });
  });

  it('holds the stream while an output is backed up, resumes when it drains or closes', () => {
    const stream = { paused: 0, resumed: 0, pause() { this.paused++; }, resume() { this.resumed++; } };
    const out = Object.assign(new EventEmitter(), { writableNeedDrain: false });
    const err = Object.assign(new EventEmitter(), { writableNeedDrain: false });
    const hold = createOutputPressure(stream, [out, err]);
    const other = { paused: 0, resumed: 0, pause() { this.paused++; }, resume() { this.resumed++; } };
    const holdOther = createOutputPressure(other, [out, err]);
    hold();
    expect(stream.paused).toBe(0);
    out.writableNeedDrain = true;
    err.writableNeedDrain = true;
    hold();
    hold();
    holdOther();
    expect(stream.paused).toBe(1);
    expect(other.paused).toBe(1);
    // Many stages waiting share one listener per output (no listener leak warnings at -j 16).
    expect(out.listenerCount('drain')).toBe(1);
    out.writableNeedDrain = false;
    out.emit('drain');
    expect(stream.resumed).toBe(0); // stderr is still backed up
    err.emit('close');
    expect(stream.resumed).toBe(1);
    expect(other.resumed).toBe(1);
    expect(out.listenerCount('drain') + out.listenerCount('close') + err.listenerCount('drain') + err.listenerCount('close')).toBe(0);
    recordFaults({ scenario: 'output backpressure (in-process)', injected: 1, recovered: 1, lost: 0 });
  });
});
