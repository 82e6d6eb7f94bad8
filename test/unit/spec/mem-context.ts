import type { SpecContext } from '../../../runner/spec/types.js';

/** An in-memory workspace: file path → content; directories are implied by the paths. */
export function memContext(files: Record<string, string>): SpecContext & { asked: string[] } {
  const asked: string[] = [];
  const paths = Object.keys(files);
  return {
    asked,
    readParamsFile: (p) => {
      asked.push(`read ${p}`);
      return files[p] === undefined ? null : { text: files[p] };
    },
    exists: (p) => {
      asked.push(`exists ${p}`);
      if (files[p] !== undefined) return 'file';
      return paths.some((f) => f.startsWith(`${p}/`)) ? 'dir' : null;
    },
    listDir: (p) => {
      const prefix = p === '' ? '' : `${p}/`;
      const names = new Set(paths.filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length).split('/')[0] ?? ''));
      return names.size === 0 ? null : [...names].sort();
    },
  };
}
