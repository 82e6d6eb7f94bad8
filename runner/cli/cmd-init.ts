import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { COMMON_OPTIONS, parse } from './args.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

const EXAMPLE_PIPELINE = `# A pipeline: stages run in containers; only changed stages run again.
# Reference: docs/pipeline-spec.md in the hpcflow repository.
stages:
  hello:
    image: { build: base }          # built from containers/base/Dockerfile
    cmd: echo "hello from \${who}" > results/hello.txt
    params:
      who: hpcflow
    outs: [results/hello.txt]
`;

const EXAMPLE_DOCKERFILE = `# Pin base images by version; hpcflow records the resolved image id in hpcflow.lock.
FROM debian:bookworm-slim
`;

/** `hpcflow init [dir]`: the workspace layout, an example pipeline, and .gitignore entries. */
export async function cmdInit(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON_OPTIONS });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const root = resolve(io.cwd, positionals[0] ?? values.workspace ?? '.');
  const created: string[] = [];
  for (const d of ['pipelines', 'containers/base', 'kernels', 'datasets']) {
    if (!existsSync(join(root, d))) {
      await mkdir(join(root, d), { recursive: true });
      created.push(`${d}/`);
    }
  }
  const write = async (rel: string, text: string): Promise<void> => {
    if (existsSync(join(root, rel))) return;
    await writeFile(join(root, rel), text);
    created.push(rel);
  };
  if (!(await hasYaml(join(root, 'pipelines')))) await write('pipelines/example.yaml', EXAMPLE_PIPELINE);
  await write('containers/base/Dockerfile', EXAMPLE_DOCKERFILE);
  const gi = join(root, '.gitignore');
  const current = existsSync(gi) ? await readFile(gi, 'utf8') : '';
  if (!current.split('\n').includes('.hpcflow/')) {
    await appendFile(gi, `${current === '' || current.endsWith('\n') ? '' : '\n'}# hpcflow: local cache, stat cache, run records\n.hpcflow/\n`);
    created.push('.gitignore (.hpcflow/)');
  }
  io.out(created.length ? `initialised ${root}:\n${created.map((c) => `  + ${c}`).join('\n')}\n` : `${root} is already an hpcflow workspace\n`);
  io.out('next: hpcflow status   (what would run, and why)\n');
  return EXIT.ok;
}

async function hasYaml(dir: string): Promise<boolean> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(dir)).some((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
}
