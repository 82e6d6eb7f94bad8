import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PipelineFileSchema, pipelineJsonSchema, pipelineJsonSchemaText } from '../../../runner/spec/schema.js';

const committed = fileURLToPath(new URL('../../../schema/pipeline.schema.json', import.meta.url));

describe('pipeline JSON Schema', () => {
  it('schema/pipeline.schema.json is in sync with the zod schema', () => {
    const stale = 'schema/pipeline.schema.json is out of date with runner/spec/schema.ts: run `npm run schema` and commit the result';
    expect(existsSync(committed), stale).toBe(true);
    // Compare text, not parsed JSON: the file is what editors and the package ship.
    expect(readFileSync(committed, 'utf8') === pipelineJsonSchemaText(), stale).toBe(true);
  });

  it('describes strict objects and the documented keys', () => {
    const s = pipelineJsonSchema() as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, unknown>;
      $defs: Record<string, unknown>;
    };
    expect(s.required).toEqual(['stages']);
    expect(s.additionalProperties).toBe(false);
    expect(Object.keys(s.properties)).toEqual(['params_file', 'defaults', 'stages']);
    expect(Object.keys(s.$defs).sort()).toEqual(['HpcflowCommand', 'HpcflowEnv', 'HpcflowImage', 'HpcflowKernel', 'HpcflowResources']);
    expect(pipelineJsonSchemaText()).toContain('"description"');
  });

  it('accepts the documented example', () => {
    const example = {
      params_file: 'params.yaml',
      defaults: { image: { build: 'openmp' }, resources: { cpus_per_task: 2 }, env: { OMP_PROC_BIND: 'close' } },
      stages: {
        gen: {
          image: 'debian:bookworm',
          cmd: './gen --n ${n} --out data/ic.bin',
          wdir: '.',
          deps: ['kernels/gen.c', { stage: 'prepare' }],
          params: { n: 4000, alpha: { from: 'params.yaml', key: 'heat.alpha' } },
          outs: ['data/ic.bin', { path: 'data/big/', cache: false }],
          metrics: 'metrics/gen.json',
          resources: { nodes: 1, tasks_per_node: 1, cpus_per_task: 1, memory: '2G', time: '00:10:00' },
          env: { OMP_NUM_THREADS: '2' },
          matrix: { impl: ['openmp', 'chapel'], n: [1000, 2000] },
        },
      },
    };
    expect(PipelineFileSchema.safeParse(example).success).toBe(true);
  });
});
