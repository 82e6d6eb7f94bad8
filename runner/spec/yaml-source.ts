/**
 * YAML text → plain JS value plus a way back from a value path (`['stages','gen','cmd']`) to
 * the file:line:col where it was written, so every later diagnostic can point at its node.
 */
import type { CST, Document, Node, Pair, YAMLMap } from 'yaml';
import { Composer, isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, YAMLParseError } from 'yaml';
import type { Diagnostic } from '../model/diagnostic.js';
import type { SourcePos } from '../model/pipeline.js';

/** Alias expansions allowed while converting to JS: plenty for anchors, none for "billion laughs". */
export const MAX_ALIAS_COUNT = 1000;

/**
 * Levels of lists and mappings inside each other, counting what aliases expand to. Real files
 * need a handful; the YAML library composes documents recursively, so without a bound a file of
 * a few thousand `[` exhausts the stack (and leaves the process unable to parse YAML again).
 */
export const MAX_NESTING_DEPTH = 100;

/** Nodes that all aliases of a file may expand to together (a "billion laughs" needs billions). */
export const MAX_ALIAS_EXPANSION = 100_000;

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

/** A scalar key as the JS value has it (a null key becomes '', as toJS makes it). */
function keyText(k: unknown): string | null {
  if (isScalar(k)) return k.value === null ? '' : String(k.value);
  return null;
}

const isCollectionToken = (t: CST.Token): t is CST.BlockMap | CST.BlockSequence | CST.FlowCollection => t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection';

/**
 * The offset of a list or mapping nested deeper than {@link MAX_NESTING_DEPTH} in the syntax
 * tree, or null. Iterative: it must not need the stack depth it guards against.
 */
function tooDeepAt(tokens: readonly CST.Token[]): number | null {
  const todo: [CST.Token, number][] = tokens.map((t) => [t, 0]);
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [t, depth] = next;
    if (t.type === 'document') {
      if (t.value) todo.push([t.value, depth]);
    } else if (isCollectionToken(t)) {
      if (depth + 1 > MAX_NESTING_DEPTH) return t.offset;
      for (const item of t.items) {
        if ('key' in item && item.key) todo.push([item.key, depth + 1]);
        if (item.value) todo.push([item.value, depth + 1]);
      }
    }
  }
  return null;
}

/**
 * The syntax tree of `text` (what `parseDocument` composes), and the offset of a collection
 * nested too deep, if any. The parser is fed lexeme by lexeme so that runaway nesting is caught
 * while its stack of open collections is still short: a million `[` would otherwise build a
 * million nested tokens (about a gigabyte) before any check could see them.
 */
function syntaxTree(text: string, lc: LineCounter): { tokens: CST.Token[]; deepAt: number | null } {
  const parser = new Parser(lc.addNewLine);
  lc.addNewLine(0); // as Parser.parse() does at the start of input
  const tokens: CST.Token[] = [];
  // Every open collection is on the parser's stack with its ancestors: a stack never longer than
  // the limit means no nesting beyond it, and the tree need not be walked.
  let deepest = 0;
  for (const lexeme of new Lexer().lex(text)) {
    for (const t of parser.next(lexeme)) tokens.push(t);
    if (parser.stack.length > deepest) {
      deepest = parser.stack.length;
      if (deepest > 2 * MAX_NESTING_DEPTH) {
        let open = 0;
        for (const t of parser.stack) if (isCollectionToken(t) && ++open > MAX_NESTING_DEPTH) return { tokens: [], deepAt: t.offset };
      }
    }
  }
  for (const t of parser.end()) tokens.push(t);
  return { tokens, deepAt: deepest > MAX_NESTING_DEPTH ? tooDeepAt(tokens) : null };
}

/** `parseDocument` over tokens already parsed: one document (a second one is an error). */
function composeOne(tokens: readonly CST.Token[], end: number): Document.Parsed {
  // resolveKnownTags: false — !!binary, !!set, !!omap, !!timestamp stay plain values (strings,
  // mappings, lists), so every value is JSON-like; logLevel: 'error' — no process warnings.
  const composer = new Composer({ uniqueKeys: false, logLevel: 'error', resolveKnownTags: false });
  let doc: Document.Parsed | undefined;
  for (const d of composer.compose(tokens, true, end)) {
    if (doc === undefined) doc = d;
    else {
      doc.errors.push(new YAMLParseError([d.range[0], d.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents'));
      break;
    }
  }
  return doc as Document.Parsed;
}

/** What to do about a syntax error, for the cases that have a typical cause. */
function syntaxHint(code: string, lineText: string): string {
  if (code === 'MULTIPLE_DOCS') return "this file must hold one YAML document: remove the '---' separator and what follows, or move it to its own file";
  if (code === 'TAB_AS_INDENT') return 'indent with spaces: YAML does not allow tabs for indentation';
  // (Not a regular expression: /[[{].*\$\{/ backtracks quadratically on a long line of brackets.)
  const open = lineText.search(/[[{]/);
  if (open >= 0 && lineText.includes('${', open + 1)) return 'quote values that contain ${…} inside [ ] or { } (e.g. ["out/${n}.bin"]): braces end a plain value there';
  return 'fix the YAML syntax (indentation, quotes, brackets) at this position';
}

/** Parse YAML text. `file` is the workspace-relative path used in positions. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lc = new LineCounter();
  // The syntax tree first, to refuse runaway nesting before the recursive composer sees it.
  const { tokens, deepAt } = syntaxTree(text, lc);
  // uniqueKeys: false — we report duplicates ourselves, with both positions and a better code.
  const doc = composeOne(deepAt === null ? tokens : [], deepAt === null ? text.length : 0);
  const at = (offset: number): SourcePos => {
    const p = lc.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const nodePos = (n: Node | null | undefined): SourcePos => at(n?.range?.[0] ?? doc.contents?.range?.[0] ?? 0);
  const diagnostics: Diagnostic[] = [];
  if (deepAt !== null) {
    diagnostics.push({
      code: 'HPCFLOW_SPEC_YAML',
      message: `YAML nesting is deeper than ${MAX_NESTING_DEPTH} levels`,
      pos: at(deepAt),
      hint: `lists and mappings may be nested at most ${MAX_NESTING_DEPTH} deep: flatten the structure`,
    });
  }
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
  // Alias → the anchored node it stands for (resolved once here: Alias.resolve walks the document).
  const targets = new Map<Node, Node>();
  if (!fatal) {
    // Duplicate keys still leave a usable value (the last entry wins); a dangling, cyclic or
    // exploding alias, runaway nesting or a list as a key do not.
    fatal = checkTree(doc.contents, nodePos, diagnostics, targets);
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
      if (cur && isAlias(cur)) cur = targets.get(cur) ?? null;
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
      if (n && isAlias(n)) n = targets.get(n) ?? null;
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

/** What a node stands for once aliases are expanded: its nesting height and node count. */
interface Expanded {
  readonly height: number;
  readonly size: number;
}

const SCALAR: Expanded = { height: 0, size: 1 };

/**
 * Walks the tree once, in document order: reports duplicate keys, aliases to missing anchors,
 * aliases inside the node they refer to (a cyclic value), lists or mappings used as keys,
 * nesting deeper than {@link MAX_NESTING_DEPTH} (also through aliases) and aliases expanding to
 * more than {@link MAX_ALIAS_EXPANSION} nodes. Records each alias's target in `targets` (an alias
 * refers to the last node anchored by that name before it, as the YAML library resolves it).
 * Returns whether the value is unusable. The recursion is as deep as the tree, which the
 * syntax check bounded.
 */
function checkTree(root: unknown, nodePos: (n: Node | null | undefined) => SourcePos, out: Diagnostic[], targets: Map<Node, Node>): boolean {
  const anchors = new Map<string, Node>();
  const expanded = new Map<Node, Expanded>();
  const open = new Set<Node>();
  let expansion = 0;
  let fatal = false;
  const stop = (d: Diagnostic): Expanded => {
    out.push(d);
    fatal = true;
    return SCALAR;
  };

  const visit = (node: unknown, level: number, isStages: boolean): Expanded => {
    if (fatal || !isNode(node)) return SCALAR;
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) {
        return stop({
          code: 'HPCFLOW_SPEC_YAML',
          message: `YAML alias *${node.source} refers to no anchor`,
          pos: nodePos(node),
          hint: `define &${node.source} before this alias, or fix its name`,
        });
      }
      targets.set(node, target);
      if (open.has(target)) {
        return stop({
          code: 'HPCFLOW_SPEC_YAML',
          message: `YAML alias *${node.source} is inside the node it refers to (the value would contain itself)`,
          pos: nodePos(node),
          hint: `move *${node.source} out of the node anchored &${node.source}`,
        });
      }
      const e = expanded.get(target) ?? SCALAR;
      expansion += e.size;
      if (level + e.height > MAX_NESTING_DEPTH) {
        return stop({
          code: 'HPCFLOW_SPEC_YAML',
          message: `YAML alias *${node.source} makes the nesting deeper than ${MAX_NESTING_DEPTH} levels`,
          pos: nodePos(node),
          hint: 'write the values out instead of nesting aliases in each other',
        });
      }
      if (expansion > MAX_ALIAS_EXPANSION) {
        return stop({
          code: 'HPCFLOW_SPEC_YAML',
          message: `YAML aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (a "billion laughs" document?)`,
          pos: nodePos(node),
          hint: 'write the values out instead of aliasing aliases of large nodes',
        });
      }
      return e;
    }
    if (node.anchor) anchors.set(node.anchor, node);
    if (!isMap(node) && !isSeq(node)) return SCALAR;
    if (level + 1 > MAX_NESTING_DEPTH) {
      return stop({
        code: 'HPCFLOW_SPEC_YAML',
        message: `YAML nesting is deeper than ${MAX_NESTING_DEPTH} levels`,
        pos: nodePos(node),
        hint: `lists and mappings may be nested at most ${MAX_NESTING_DEPTH} deep: flatten the structure`,
      });
    }
    open.add(node);
    let height = 0;
    let size = 1;
    const add = (e: Expanded): void => {
      height = Math.max(height, e.height);
      size = Math.min(Number.MAX_SAFE_INTEGER, size + e.size);
    };
    if (isMap(node)) {
      const seen = new Map<string, Node>();
      for (const pair of node.items) {
        if (isCollection(pair.key)) {
          return stop({
            code: 'HPCFLOW_SPEC_YAML',
            message: 'a YAML mapping key is a list or mapping',
            pos: nodePos(pair.key),
            hint: 'keys are plain names or numbers; quote a key that contains [ ] or { }',
          });
        }
        const k = keyText(pair.key);
        if (k !== null) {
          const first = seen.get(k);
          const keyNode = pair.key as Node;
          if (first) {
            // A duplicate key right under `stages` is a stage declared twice.
            out.push({
              code: isStages ? 'HPCFLOW_SPEC_DUPLICATE_STAGE' : 'HPCFLOW_SPEC_YAML',
              message: isStages ? `stage '${k}' is declared twice` : `duplicate key '${k}'`,
              pos: nodePos(keyNode),
              related: [{ pos: nodePos(first), message: 'first declared here' }],
              hint: isStages ? 'rename one of the stages (each name must be unique in its pipeline)' : `remove one of the '${k}' entries`,
            });
          } else {
            seen.set(k, keyNode);
          }
        }
        add(visit(pair.key, level + 1, false));
        add(visit(pair.value, level + 1, level === 0 && k === 'stages'));
      }
    } else {
      for (const item of node.items) {
        if (isPair(item)) {
          add(visit(item.key, level + 1, false));
          add(visit(item.value, level + 1, false));
        } else {
          add(visit(item, level + 1, false));
        }
      }
    }
    open.delete(node);
    const e = { height: height + 1, size };
    if (node.anchor) expanded.set(node, e);
    return e;
  };
  visit(root, 0, false);
  return fatal;
}
