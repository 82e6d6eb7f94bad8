import { describe, expect, it } from 'vitest';
import { createLineSplitter, createTail } from '../../../../runner/executors/docker/log-lines.js';

function split(chunks: Buffer[]): string[] {
  const out: string[] = [];
  const s = createLineSplitter((l) => out.push(l));
  for (const c of chunks) s.push(c);
  s.flush();
  return out;
}

describe('createLineSplitter', () => {
  it('joins partial lines across chunks and flushes the last one', () => {
    expect(split([Buffer.from('a\nb'), Buffer.from('c\n\nd')])).toEqual(['a', 'bc', '', 'd']);
  });
  it('drops CR of CRLF and decodes UTF-8 split mid-character', () => {
    const euro = Buffer.from('€\r\n');
    expect(split([euro.subarray(0, 1), euro.subarray(1)])).toEqual(['€']);
  });
  it('emits nothing for empty input', () => {
    expect(split([])).toEqual([]);
  });
});

describe('createTail', () => {
  it('keeps the last n lines', () => {
    const t = createTail(2);
    ['1', '2', '3'].forEach((l) => t.add(l));
    expect(t.lines()).toEqual(['2', '3']);
  });
});
