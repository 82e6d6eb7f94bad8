/** The CLI's window on the world, passed in so commands can be tested in-process. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  readonly isTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    // A terminal of zero columns (some pseudo-terminals) makes a spinner's line arithmetic loop:
    // treat it as no terminal and print plain lines.
    isTTY: Boolean(process.stdout.isTTY) && (process.stdout.columns ?? 0) > 0 && process.env.CI === undefined,
    env: process.env,
    cwd: process.cwd(),
  };
}
