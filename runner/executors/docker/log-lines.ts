import { StringDecoder } from 'node:string_decoder';

/** Turns a byte stream into lines: keeps the partial last line until more bytes or `flush()`. */
export interface LineSplitter {
  push(chunk: Buffer): void;
  /** Emits the pending partial line (if any). Call once, at end of stream. */
  flush(): void;
}

/**
 * The longest line passed on whole. A longer one (a binary dump, a progress bar without
 * newlines) is passed on in pieces of this many characters, so that a stage's output is
 * streamed in bounded memory whatever it writes.
 */
export const MAX_LINE_CHARS = 64 * 1024;

/** Where to cut `s` near `n` without splitting a UTF-16 surrogate pair. */
function cutAt(s: string, n: number): number {
  const c = s.charCodeAt(n - 1);
  return n > 1 && c >= 0xd800 && c <= 0xdbff ? n - 1 : n;
}

/**
 * PURE apart from calling `onLine`. UTF-8 characters split across chunks are decoded whole;
 * `\n` ends a line, a `\r` before it is dropped; an empty line is a line; a line longer than
 * `maxLine` (default {@link MAX_LINE_CHARS}) comes out in pieces. Linear in the input: each
 * chunk is scanned once.
 */
export function createLineSplitter(onLine: (line: string) => void, opts: { readonly maxLine?: number } = {}): LineSplitter {
  const max = opts.maxLine ?? MAX_LINE_CHARS;
  const decoder = new StringDecoder('utf8');
  /** The unfinished last line: at most `max` characters between calls. */
  let pending = '';
  function line(text: string): void {
    let rest = text.endsWith('\r') ? text.slice(0, -1) : text;
    while (rest.length > max) {
      const cut = cutAt(rest, max);
      onLine(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    onLine(rest);
  }
  function emit(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const whole = pending + text.slice(start, nl);
      pending = '';
      start = nl + 1;
      line(whole);
    }
    pending += text.slice(start);
    while (pending.length > max) {
      const cut = cutAt(pending, max);
      onLine(pending.slice(0, cut));
      pending = pending.slice(cut);
    }
  }
  return {
    push(chunk) {
      emit(decoder.write(chunk));
    },
    flush() {
      emit(decoder.end());
      if (pending !== '') {
        const last = pending;
        pending = '';
        line(last);
      }
    },
  };
}

/** Keeps the last `max` lines (for error messages). */
export function createTail(max: number): { add(line: string): void; lines(): string[] } {
  const buf: string[] = [];
  return {
    add(line) {
      buf.push(line);
      if (buf.length > max) buf.shift();
    },
    lines: () => [...buf],
  };
}

/** An output the runner's log lines end up in (its stdout and stderr). */
interface Output {
  readonly writableNeedDrain: boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Who waits for each backed-up output: one listener per output, however many stages wait. */
const waiting = new WeakMap<Output, Set<() => void>>();

/** Calls `fn` once `o` has drained (or closed: then it never will). */
function whenDrained(o: Output, fn: () => void): void {
  let fns = waiting.get(o);
  if (fns === undefined) {
    const all = new Set<() => void>();
    fns = all;
    waiting.set(o, all);
    const fire = (): void => {
      o.off('drain', fire);
      o.off('close', fire);
      waiting.delete(o);
      for (const f of all) f();
    };
    o.once('drain', fire);
    o.once('close', fire);
  }
  fns.add(fn);
}

/**
 * Backpressure from the runner's own output to a container's output stream. When the runner's
 * stdout or stderr is a pipe to a slow reader (`hpcflow run | tee log`, a CI log collector),
 * writes queue in memory; call the returned function after each chunk of the stream is handed
 * on: while an output has a backlog, the stream is paused until it drains, so the stage's
 * output waits in the container's pipe (the stage blocks on write), not in the runner's memory.
 * Files and terminals are written synchronously and never hold the stream back.
 */
export function createOutputPressure(stream: { pause(): unknown; resume(): unknown }, outputs: readonly Output[] = [process.stdout, process.stderr]): () => void {
  let held = false;
  return () => {
    if (held) return;
    const full = outputs.filter((o) => o.writableNeedDrain);
    if (full.length === 0) return;
    held = true;
    stream.pause();
    let left = full.length;
    for (const o of full) {
      whenDrained(o, () => {
        if (--left === 0) {
          held = false;
          stream.resume();
        }
      });
    }
  };
}
