import { describe, expect, it } from 'vitest';
import {
  canPruneDirectory,
  isIgnored,
  parseDockerignore,
  patternToRegex,
} from '../../../../runner/executors/docker/dockerignore.js';

describe('parseDockerignore', () => {
  it('skips comments and blanks, strips leading/trailing slashes, reads negations', () => {
    const rules = parseDockerignore('# comment\n\n/build/\n!build/keep.txt\r\n  *.o  \n./docs\n');
    expect(rules.map((r) => [r.pattern, r.negate])).toEqual([
      ['build', false],
      ['build/keep.txt', true],
      ['*.o', false],
      ['docs', false],
    ]);
  });
});

describe('patternToRegex', () => {
  it.each([
    ['*.o', 'a.o', true],
    ['*.o', 'dir/a.o', false],
    ['**/*.o', 'dir/sub/a.o', true],
    ['**/*.o', 'a.o', true],
    ['a/**', 'a/b/c', true],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file10.txt', false],
    ['[ab].txt', 'b.txt', true],
    ['[!ab].txt', 'b.txt', false],
    ['a.b', 'aXb', false],
  ])('%s vs %s → %s', (pattern, p, expected) => {
    expect(patternToRegex(pattern).test(p)).toBe(expected);
  });
});

describe('isIgnored', () => {
  const rules = parseDockerignore('build\n!build/keep.txt\n*.log\nsecret/**\n');
  it('excludes a matching path and everything below a matching directory', () => {
    expect(isIgnored('build', rules)).toBe(true);
    expect(isIgnored('build/out/x.bin', rules)).toBe(true);
    expect(isIgnored('run.log', rules)).toBe(true);
    expect(isIgnored('sub/run.log', rules)).toBe(false);
    expect(isIgnored('secret/a/b', rules)).toBe(true);
    expect(isIgnored('src/main.c', rules)).toBe(false);
  });
  it('lets the last matching line decide (negation re-includes)', () => {
    expect(isIgnored('build/keep.txt', rules)).toBe(false);
  });
  it('never ignores the Dockerfile or .dockerignore', () => {
    const all = parseDockerignore('*\n');
    expect(isIgnored('Dockerfile', all)).toBe(false);
    expect(isIgnored('.dockerignore', all)).toBe(false);
    expect(isIgnored('Dockerfile.gpu', all, 'Dockerfile.gpu')).toBe(false);
    expect(isIgnored('x', all)).toBe(true);
  });
  it('prunes directories only when no negation could bring a child back', () => {
    expect(canPruneDirectory('build', rules)).toBe(false);
    expect(canPruneDirectory('build', parseDockerignore('build\n'))).toBe(true);
    expect(canPruneDirectory('src', parseDockerignore('build\n'))).toBe(false);
  });
});
