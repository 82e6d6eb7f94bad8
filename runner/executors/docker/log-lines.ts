import { StringDecoder } from 'node:string_decoder';

/** Turns a byte stream into lines: keeps the partial last line until more bytes or `flush()`. */
export interface LineSplitter {
  push(chunk: Buffer): void;
  /** Emits the pending partial line (if any). Call once, at end of stream. */
  flush(): void;
}

/**
 * PURE apart from calling `onLine`. UTF-8 characters split across chunks are decoded whole;
 * `\n` ends a line, a `\r` before it is dropped; an empty line is a line.
 */
export function createLineSplitter(onLine: (line: string) => void): LineSplitter {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  function emit(text: string): void {
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
  }
  return {
    push(chunk) {
      emit(decoder.write(chunk));
    },
    flush() {
      emit(decoder.end());
      if (pending !== '') {
        const line = pending;
        pending = '';
        onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
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
