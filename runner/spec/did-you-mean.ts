/**
 * "Did you mean …?" suggestions: the closest candidate by optimal-string-alignment distance
 * (Levenshtein plus adjacent transpositions, which is how most typos happen: `gne` → `gen`).
 */

/** Edit distance with adjacent transpositions; stops early once it exceeds `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  // Three rolling rows are enough for the transposition lookback.
  let prev2: number[] = [];
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur: number[] = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (prev2[j - 2] ?? 0) + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** Largest distance still worth suggesting: short words tolerate one typo, longer ones a third. */
function threshold(word: string): number {
  return Math.max(1, Math.floor(word.length / 3));
}

/**
 * Longest word a suggestion is looked for. A typo is made in a name or a path someone types;
 * the distance costs length² per candidate, so a hostile file of long names (thousands of
 * characters, compared with each other) must not turn a check into minutes of CPU.
 */
const MAX_WORD = 200;

/** Cells of distance tables one lookup may fill (a few milliseconds); then the best so far stands. */
const BUDGET = 1_000_000;

/**
 * The candidate closest to `word`, or null when nothing is close enough. Ties go to the
 * earlier candidate, so callers control preference by ordering.
 */
export function closest(word: string, candidates: Iterable<string>): string | null {
  if (word.length > MAX_WORD) return null;
  const max = threshold(word);
  let best: string | null = null;
  let bestD = max + 1;
  const lower = word.toLowerCase();
  let spent = 0;
  for (const c of candidates) {
    if (c === word) continue;
    // A case-only difference is the most likely intent.
    let d = 0.5;
    if (c.toLowerCase() !== lower) {
      if (Math.abs(c.length - word.length) > max) continue;
      spent += (word.length + 1) * (c.length + 1);
      if (spent > BUDGET) break;
      d = editDistance(word, c, max);
    }
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `did you mean 'x'? ` or '' — for hints that go on with what else to do. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === null ? '' : `did you mean '${c}'? `;
}
