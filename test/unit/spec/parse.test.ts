import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../runner/model/diagnostic.js';
import { linkWorkspace } from '../../../runner/spec/link.js';
import { parsePipelineFile } from '../../../runner/spec/parse.js';
import type { LoadResult } from '../../../runner/spec/types.js';
import { memContext } from './mem-context.js';

/** Parse and link an in-memory workspace; `pipelines/<name>.yaml` → text. */
function load(pipelines: Record<string, string>, files: Record<string, string> = {}): LoadResult {
  const ctx = memContext(files);
  const results = Object.entries(pipelines).map(([name, text]) => parsePipelineFile(text, `pipelines/${name}.yaml`, ctx));
  return linkWorkspace(results, ctx);
}

function errors(r: LoadResult): string[] {
  return r.ok ? [] : r.diagnostics.map(formatDiagnostic);
}

function stages(r: LoadResult) {
  if (!r.ok) throw new Error(errors(r).join('\n'));
  return r.pipeline.stages;
}

describe('parsePipelineFile', () => {
  it('is pure: it only asks the context', () => {
    const ctx = memContext({ 'params.yaml': 'n: 3\n', 'containers/omp/Dockerfile': 'FROM x\n' });
    const r = parsePipelineFile(
      'stages:\n  gen:\n    image: { build: omp }\n    cmd: ./gen ${n}\n    params: [n]\n    outs: [out.bin]\n',
      'pipelines/p.yaml',
      ctx,
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.stages.map((s) => s.cmd)).toEqual(['./gen 3']);
    expect(ctx.asked).toEqual(['read params.yaml', 'exists containers/omp/Dockerfile']);
  });

  it('records where each dep and output was written', () => {
    const text = ['stages:', '  gen:', '    image: a', '    cmd: b', '    deps:', '      - x.c', '    outs: [o1, { path: o2 }]', '    metrics: m.json', ''].join('\n');
    const r = parsePipelineFile(text, 'pipelines/p.yaml', memContext({}));
    const src = r.sources.get('p/gen');
    expect(r.stages[0]?.pos).toEqual({ file: 'pipelines/p.yaml', line: 2, col: 3 });
    expect(src?.deps).toEqual([{ file: 'pipelines/p.yaml', line: 6, col: 9 }]);
    expect(src?.outs.map((p) => `${p.line}:${p.col}`)).toEqual(['7:12', '7:24']);
    expect(src?.metrics).toEqual({ file: 'pipelines/p.yaml', line: 8, col: 14 });
  });

  it('keeps declaration order of stages, even for integer-like names', () => {
    const r = load({ p: 'stages:\n  "2": { image: a, cmd: b }\n  "1": { image: a, cmd: b }\n  x: { image: a, cmd: b }\n' });
    expect(stages(r).map((s) => s.id)).toEqual(['p/2', 'p/1', 'p/x']);
  });

  it('rejects a pipeline file whose name is not a valid pipeline name', () => {
    const r = parsePipelineFile('stages: {}\n', 'pipelines/my heat.yaml', memContext({}));
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "pipelines/my heat.yaml:1:1: error HPCFLOW_SPEC_BAD_VALUE: pipeline name 'my heat' (the file's basename) is not a valid name\n" +
        '  hint: rename the file: letters, digits, "_", "." and "-", not starting with "." or "-"',
    ]);
  });
});

describe('matrix and stage references', () => {
  it('maps matrix cells one-to-one with an interpolated { stage } ref', () => {
    const r = load({
      bench: [
        'stages:',
        '  gen:',
        '    image: a',
        '    cmd: ./gen ${n}',
        '    outs: ["d/${n}.bin"]',
        '    matrix: { n: [1, 2] }',
        '  use:',
        '    image: a',
        '    cmd: ./use ${n}',
        '    deps: [{ stage: "gen@n=${n}" }]',
        '    matrix: { n: [1, 2] }',
        '',
      ].join('\n'),
    });
    expect(stages(r).map((s) => [s.id, s.deps])).toEqual([
      ['bench/gen@n=1', []],
      ['bench/gen@n=2', []],
      ['bench/use@n=1', [{ kind: 'stage', stage: 'bench/gen@n=1' }]],
      ['bench/use@n=2', [{ kind: 'stage', stage: 'bench/gen@n=2' }]],
    ]);
  });

  it('orders cells with the first matrix key varying slowest and keeps value types', () => {
    const r = load({ m: 'stages:\n  s:\n    image: a\n    cmd: "${a} ${b}"\n    matrix: { a: [x, y], b: [true, 1.5] }\n' });
    expect(stages(r).map((s) => s.id)).toEqual(['m/s@a=x,b=true', 'm/s@a=x,b=1.5', 'm/s@a=y,b=true', 'm/s@a=y,b=1.5']);
    expect(stages(r)[1]?.matrix).toEqual({ a: 'x', b: 1.5 });
  });

  it('rejects a matrix key that is also a param name', () => {
    const r = load({ m: 'stages:\n  s:\n    image: a\n    cmd: ./s ${n}\n    params: { n: 1 }\n    matrix: { n: [1, 2] }\n' });
    expect(errors(r)).toEqual([
      "pipelines/m.yaml:6:15: error HPCFLOW_SPEC_BAD_VALUE: matrix key 'n' of stage m/s is also a param name\n" +
        '  hint: rename the matrix key or the param: ${n} must mean one thing',
    ]);
  });
});

describe('diagnostics', () => {
  it('collects problems of every stage in one pass, sorted by position', () => {
    const r = load(
      {
        p: [
          'stages:',
          '  a:',
          '    image: x',
          '    cmd: ./a ${nope}',
          '    outs: [a.out]',
          '  b:',
          '    image: x',
          '    cmd: ./b',
          '    deps: [a.ot]',
          '    outz: [b.out]',
          '  c:',
          '    image: x',
          '    cmd: ./c',
          '    deps: [missing.txt]',
          '',
        ].join('\n'),
      },
      {},
    );
    expect(errors(r).map((e) => e.split('\n')[0])).toEqual([
      "pipelines/p.yaml:4:14: error HPCFLOW_SPEC_INTERPOLATION: unknown variable '${nope}' in cmd of stage p/a",
      "pipelines/p.yaml:10:5: error HPCFLOW_SPEC_UNKNOWN_KEY: unknown key 'outz' in stages.b",
      "pipelines/p.yaml:14:12: error HPCFLOW_SPEC_UNKNOWN_DEP: dep 'missing.txt' of stage p/c does not exist and is not an output of any stage",
    ]);
  });

  it('does not call a dep unknown when the stage producing it is itself invalid', () => {
    const r = load({
      p: 'stages:\n  a:\n    image: x\n    cmd: 3\n    outs: [a.out]\n  b:\n    image: x\n    cmd: ./b\n    deps: [a.out, { stage: a }]\n',
    });
    expect(errors(r).map((e) => e.split('\n')[0])).toEqual([
      'pipelines/p.yaml:4:10: error HPCFLOW_SPEC_TYPE: stages.a.cmd: expected a command string or a list of command strings, got number 3',
    ]);
  });

  it('does not flag references into a pipeline file that failed to parse', () => {
    const r = load({ a: 'stages: [\n', b: 'stages:\n  use:\n    image: x\n    cmd: y\n    deps: [{ stage: a/gen }, a-out.bin]\n' });
    expect(errors(r).every((e) => e.startsWith('pipelines/a.yaml'))).toBe(true);
  });

  it('reports a shared defaults problem once', () => {
    const r = load({
      p: 'defaults:\n  image: { build: nope }\nstages:\n  a: { cmd: a }\n  b: { cmd: b }\n  c: { cmd: c }\n',
    });
    expect(errors(r)).toEqual([
      'pipelines/p.yaml:2:19: error HPCFLOW_SPEC_IMAGE_CONTEXT: image build context containers/nope/ does not exist\n' +
        '  hint: create containers/nope/ with a Dockerfile, or fix image.build',
    ]);
  });

  it('reports an output listed twice by one stage, and outputs in reserved or root locations', () => {
    const r = load({ p: 'stages:\n  a:\n    image: x\n    cmd: y\n    outs: [m.json, .hpcflow/x, .]\n    metrics: m.json\n' });
    expect(errors(r).map((e) => e.split('\n')[0])).toEqual([
      "pipelines/p.yaml:5:20: error HPCFLOW_SPEC_BAD_VALUE: output path '.hpcflow/x' is inside .hpcflow/, which hpcflow and git manage",
      "pipelines/p.yaml:5:32: error HPCFLOW_SPEC_BAD_VALUE: output path '.' is the workspace root",
    ]);
    const dup = load({ p: 'stages:\n  a:\n    image: x\n    cmd: y\n    outs: [m.json]\n    metrics: m.json\n' });
    expect(errors(dup).map((e) => e.split('\n')[0])).toEqual([
      "pipelines/p.yaml:6:14: error HPCFLOW_SPEC_DUPLICATE_OUTPUT: stage p/a declares output 'm.json' twice",
    ]);
  });

  it('reports a dep directory that contains the stage\'s own output', () => {
    const r = load({ p: 'stages:\n  a:\n    image: x\n    cmd: y\n    deps: [data]\n    outs: [data/a.out]\n' });
    expect(errors(r)).toEqual([
      "pipelines/p.yaml:5:12: error HPCFLOW_SPEC_CYCLE: stage p/a depends on 'data', which contains its own output 'data/a.out'\n" +
        "  pipelines/p.yaml:6:12: note: 'data/a.out' is declared as an output here\n" +
        '  hint: a stage cannot read what it writes: write the output elsewhere, or narrow the dep',
    ]);
  });

  it('suggests a sibling file for a misspelt source dep', () => {
    const r = load({ p: 'stages:\n  a:\n    image: x\n    cmd: y\n    deps: [src/mian.c]\n' }, { 'src/main.c': '' });
    expect(errors(r)[0]).toContain("hint: did you mean 'src/main.c'? create it");
  });
});

describe('positions', () => {
  it('points at the list item that lacks a required key', () => {
    const r = load({ p: 'stages:\n  g:\n    image: a\n    cmd: b\n    outs:\n      - { cache: false }\n' });
    expect(errors(r)[0]).toMatch(/^pipelines\/p.yaml:6:9: error HPCFLOW_SPEC_TYPE: missing required key 'path' in stages.g.outs\[0\]/);
  });

  it('points at the ${…} inside a command, also in quoted and block scalars', () => {
    const r = load({ p: 'stages:\n  g:\n    image: a\n    cmd: |\n      echo ok\n      run "${x}"\n' });
    expect(errors(r)[0]).toMatch(/^pipelines\/p.yaml:6:12: error HPCFLOW_SPEC_INTERPOLATION/);
  });

  it('explains a second YAML document', () => {
    const r = load({ p: 'stages: {}\n---\nstages: {}\n' });
    expect(errors(r)).toEqual([
      'pipelines/p.yaml:2:1: error HPCFLOW_SPEC_YAML: YAML syntax error: the file contains more than one YAML document\n' +
        "  hint: this file must hold one YAML document: remove the '---' separator and what follows, or move it to its own file",
    ]);
  });
});

describe('cross-pipeline', () => {
  it('resolves deps on another pipeline\'s outputs and stages', () => {
    const r = load(
      {
        prep: 'stages:\n  fetch:\n    image: x\n    cmd: y\n    deps: [raw.csv]\n    outs: [clean/]\n',
        train: 'stages:\n  fit:\n    image: x\n    cmd: y\n    deps: [clean/part-0.csv, { stage: prep/fetch }]\n',
      },
      { 'raw.csv': 'a' },
    );
    expect(stages(r).map((s) => [s.id, s.deps])).toEqual([
      ['prep/fetch', [{ kind: 'path', path: 'raw.csv' }]],
      [
        'train/fit',
        [
          { kind: 'path', path: 'clean/part-0.csv' },
          { kind: 'stage', stage: 'prep/fetch' },
        ],
      ],
    ]);
  });
});
