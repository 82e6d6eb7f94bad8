/**
 * YAML text → plain JS value plus a way back from a value path (`['stages','gen','cmd']`) to
 * the file:line:col where it was written, so every later diagnostic can point at its node.
 */
import type { Document, Node, Pair, ParsedNode, YAMLMap } from 'yaml';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Diagnostic } from '../model/diagnostic.js';
import type { SourcePos } from '../model/pipeline.js';

/** Alias expansions allowed while converting to JS: plenty for anchors, none for "billion laughs". */
export const MAX_ALIAS_COUNT = 1000;

/** Syntax errors reported per file; later ones are mostly consequences of the first. */
const MAX_SYNTAX_ERRORS = 3;

/** A path into the JS value: map keys and list indexes. */
export type ValuePath = readonly PropertyKey[];

/** A parsed YAML file with position lookups. */
export interface YamlSource {
  readonly file: string;
  /** The JS value (undefined after syntax errors or broken aliases: nothing reliable to check). */
  readonly value: unknown;
  /** Syntax errors, duplicate keys, unresolved or excessive aliases. */
  readonly diagnostics: readonly Diagnostic[];
  /** Where the value at `path` is written; for a missing entry, the nearest existing key above it. */
  pos(path: ValuePath): SourcePos;
  /** Where the key of the map entry at `path` is written (falls back like `pos`). */
  keyPos(path: ValuePath): SourcePos;
  /** The keys of the mapping at `path` in written order (JS objects reorder integer-like keys). */
  keys(path: ValuePath): string[];
  /** Where `token` is written inside the value at `path` (e.g. a `${x}` in a command), else `pos`. */
  tokenPos(path: ValuePath, token: string): SourcePos;
}

interface Located {
  /** The node at the path, or null when the path leaves the document. */
  readonly node: Node | null;
  /** The key node of the last map entry on the way (the entry itself when found). */
  readonly key: Node | null;
  /** The deepest node that exists on the way. */
  readonly last: Node | null;
}

function keyText(k: unknown): string | null {
  if (isScalar(k)) return String(k.value);
  return null;
}


/** What to do about a syntax error, for the cases that have a typical cause. */
function syntaxHint(code: string, lineText: string): string {
  if (code === 'MULTIPLE_DOCS') return "this file must hold one YAML document: remove the '---' separator and what follows, or move it to its own file";
  if (code === 'TAB_AS_INDENT') return 'indent with spaces: YAML does not allow tabs for indentation';
  if (/[[{].*\$\{/.test(lineText)) return 'quote values that contain ${…} inside [ ] or { } (e.g. ["out/${n}.bin"]): braces end a plain value there';
  return 'fix the YAML syntax (indentation, quotes, brackets) at this position';
}

/** Parse YAML text. `file` is the workspace-relative path used in positions. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lc = new LineCounter();
  // uniqueKeys: false — we report duplicates ourselves, with both positions and a better code.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): SourcePos => {
    const p = lc.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const nodePos = (n: Node | null | undefined): SourcePos => at(n?.range?.[0] ?? doc.contents?.range?.[0] ?? 0);
  const diagnostics: Diagnostic[] = [];
  // One syntax error tends to cascade into many on the following tokens: report the first of
  // each line, and only the first few lines.
  const lines = new Set<number>();
  for (const e of doc.errors) {
    const pos = at(e.pos[0]);
    if (lines.has(pos.line)) continue;
    if (lines.size === MAX_SYNTAX_ERRORS) break;
    lines.add(pos.line);
    const lineText = text.split('\n')[pos.line - 1] ?? '';
    diagnostics.push({
      code: 'HPCFLOW_SPEC_YAML',
      message: e.code === 'MULTIPLE_DOCS' ? 'YAML syntax error: the file contains more than one YAML document' : `YAML syntax error: ${e.message}`,
      pos,
      hint: syntaxHint(e.code, lineText),
    });
  }
  let fatal = diagnostics.length > 0;
  if (!fatal) {
    checkTree(doc, doc.contents, 0, false, nodePos, diagnostics);
    // Duplicate keys still leave a usable value (the last entry wins); a dangling alias does not.
    fatal = diagnostics.some((d) => d.message.startsWith('YAML alias'));
  }
  let value: unknown;
  if (!fatal) {
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      diagnostics.push({
        code: 'HPCFLOW_SPEC_YAML',
        message: `YAML alias expansion failed: ${(e as Error).message}`,
        pos: nodePos(doc.contents),
        hint: `anchors/aliases may expand to at most ${MAX_ALIAS_COUNT} nodes; write the values out instead`,
      });
    }
  }

  // Key → last entry of each mapping, built on first use: lookups stay O(depth) on big files.
  const entries = new WeakMap<object, Map<string, Pair>>();
  const entry = (m: YAMLMap, key: string): Pair | undefined => {
    let idx = entries.get(m);
    if (!idx) {
      idx = new Map();
      for (const p of m.items) {
        const k = keyText(p.key);
        if (k !== null) idx.set(k, p as Pair);
      }
      entries.set(m, idx);
    }
    return idx.get(key);
  };

  const locate = (path: ValuePath): Located => {
    let cur: Node | null = (doc.contents as Node | null) ?? null;
    let key: Node | null = null;
    let last: Node | null = cur;
    for (const seg of path) {
      if (cur && isAlias(cur)) cur = (cur.resolve(doc as Document) as Node | undefined) ?? null;
      if (cur && isMap(cur)) {
        const pair = entry(cur, String(seg));
        if (!pair) return { node: null, key, last };
        key = (pair.key as Node | null) ?? key;
        cur = (pair.value as Node | null) ?? null;
        // `cmd:` with nothing after it: the entry exists, the value node may not.
        last = cur ?? key;
        if (!cur) return { node: null, key, last };
      } else if (cur && isSeq(cur) && typeof seg === 'number') {
        const item = cur.items[seg] as Node | undefined;
        if (!item) return { node: null, key, last };
        cur = item;
        last = cur;
        // A list item has no key of its own: "the key of the entry" is the item itself.
        key = null;
      } else {
        return { node: null, key, last };
      }
    }
    return { node: cur, key, last };
  };

  return {
    file,
    value,
    diagnostics,
    pos: (path) => {
      const l = locate(path);
      return nodePos(l.node ?? l.key ?? l.last);
    },
    keyPos: (path) => {
      const l = locate(path);
      return nodePos(l.key ?? l.last);
    },
    keys: (path) => {
      let n = locate(path).node;
      if (n && isAlias(n)) n = (n.resolve(doc as Document) as Node | undefined) ?? null;
      if (!n || !isMap(n)) return [];
      return [...new Set(n.items.map((p) => keyText(p.key)).filter((k): k is string => k !== null))];
    },
    tokenPos: (path, token) => {
      const n = locate(path).node;
      const r = n?.range;
      if (n && r) {
        const i = text.slice(r[0], r[1]).indexOf(token);
        if (i >= 0) return at(r[0] + i);
      }
      return nodePos(n ?? locate(path).last);
    },
  };
}

/** Report duplicate keys and aliases to missing anchors, walking the tree once. */
function checkTree(
  doc: Document.Parsed,
  node: ParsedNode | null | unknown,
  depth: number,
  isStages: boolean,
  nodePos: (n: Node | null | undefined) => SourcePos,
  out: Diagnostic[],
): void {
  if (isAlias(node)) {
    if (node.resolve(doc as Document) === undefined) {
      out.push({
        code: 'HPCFLOW_SPEC_YAML',
        message: `YAML alias *${node.source} refers to no anchor`,
        pos: nodePos(node),
        hint: `define &${node.source} before this alias, or fix its name`,
      });
    }
    return;
  }
  if (isMap(node)) {
    const seen = new Map<string, Node>();
    for (const pair of node.items) {
      const k = keyText(pair.key);
      if (k !== null) {
        const first = seen.get(k);
        const keyNode = pair.key as Node;
        if (first) {
          // A duplicate key right under `stages` is a stage declared twice.
          const isStage = isStages;
          out.push({
            code: isStage ? 'HPCFLOW_SPEC_DUPLICATE_STAGE' : 'HPCFLOW_SPEC_YAML',
            message: isStage ? `stage '${k}' is declared twice` : `duplicate key '${k}'`,
            pos: nodePos(keyNode),
            related: [{ pos: nodePos(first), message: 'first declared here' }],
            hint: isStage ? 'rename one of the stages (each name must be unique in its pipeline)' : `remove one of the '${k}' entries`,
          });
        } else {
          seen.set(k, keyNode);
        }
      }
      checkTree(doc, pair.value, depth + 1, depth === 0 && k === 'stages', nodePos, out);
    }
    return;
  }
  if (isSeq(node)) for (const item of node.items) checkTree(doc, item, depth + 1, false, nodePos, out);
}
