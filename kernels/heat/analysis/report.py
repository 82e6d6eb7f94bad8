#!/usr/bin/env python3
"""report.py - a markdown report from the summary and plot that analyse.py (or analyse.jl) wrote.

  report.py --summary SUMMARY.json --plot PLOT.svg --out REPORT.md [--title T]

The report holds the title, the overall verdict, a table of the cases (one row each), a table of the
cross-implementation comparisons, the tolerance and what it means, and the plot, linked by its path
RELATIVE to the report's directory (so the report and plot can be moved or published together).

Deterministic: the same summary gives the same bytes (no dates, no host names). The report is
written to a temporary file in the same directory and renamed; parent directories are created.

Exit status: 0 the report was written (whatever the verdict: it is in the report, and analyse's own
exit status is what fails a pipeline), 2 bad usage or input (one line on stderr naming the file).
"""

import argparse
import json
import os
import re
import sys

PROG = "report"
DEFAULT_TITLE = "Heat kernel verification"


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


def load_summary(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            s = json.load(f)
    except OSError as e:
        raise InputError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise InputError("%s is not valid JSON: %s" % (path, e)) from None

    def need(obj, key, kinds, where):
        v = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(v, bool) and bool not in kinds or not isinstance(v, kinds):
            raise InputError("%s: %s has no valid \"%s\" (got %s)" % (path, where, key, json.dumps(v)))
        return v

    num, opt_num = (int, float), (int, float, type(None))
    need(s, "tolerance", num, "the summary")
    need(s, "pass", (bool,), "the summary")
    for k, c in enumerate(need(s, "cases", (list,), "the summary")):
        where = "cases[%d]" % k
        need(c, "impl", (str,), where)
        for key in ("nx", "ny", "steps", "processes", "threads"):
            need(c, key, (int,), where)
        for key in ("alpha", "wall_s", "cell_updates_per_s"):
            need(c, key, num, where)
        need(c, "rel_err_analytic", opt_num, where)
        need(c, "pass", (bool,), where)
    for k, c in enumerate(need(s, "comparisons", (list,), "the summary")):
        where = "comparisons[%d]" % k
        need(c, "nx", (int,), where)
        need(c, "a", (str,), where)
        need(c, "b", (str,), where)
        need(c, "rel_diff", opt_num, where)
        need(c, "pass", (bool,), where)
    return s


def sig(x, digits=4):
    """A readable number with `digits` significant digits, no exponent below 10^6."""
    if x == 0:
        return "0"
    if abs(x) >= 10**digits and abs(x) < 1e6:
        return "%.0f" % x
    return "%.*g" % (digits, x)


def err(x):
    return "n/a (not finite)" if x is None else "%.2e" % x


def cell(text):
    """Table cell text: no pipes or newlines."""
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|")


def verdict(summary):
    cases, comps, tol = summary["cases"], summary["comparisons"], summary["tolerance"]
    bad_cases = sum(1 for c in cases if not c["pass"])
    bad_comps = sum(1 for c in comps if not c["pass"])
    plural = lambda n, word: "%d %s%s" % (n, word, "" if n == 1 else "s")  # noqa: E731
    if summary["pass"] and bad_cases == 0 and bad_comps == 0:
        return (
            "**Verdict: PASS**: all %s match the exact solution of the discretised equation and all %s "
            "agree, within the relative tolerance %r."
            % (plural(len(cases), "case"), plural(len(comps), "cross-implementation comparison"), tol)
        )
    return (
        "**Verdict: FAIL**: %d of %s and %d of %s exceed the relative tolerance %r."
        % (bad_cases, plural(len(cases), "case"), bad_comps, plural(len(comps), "comparison"), tol)
    )


def markdown_link_target(rel):
    return "<%s>" % rel if re.search(r"[\s()<>]", rel) else rel


def render(summary, title, plot_rel):
    cases, comps, tol = summary["cases"], summary["comparisons"], summary["tolerance"]
    ny_of = {(c["nx"], c["impl"]): c["ny"] for c in cases}
    out = ["# %s" % re.sub(r"\s+", " ", title).strip(), "", verdict(summary), ""]

    out += ["## Cases", ""]
    if cases:
        out += [
            "| Implementation | Grid | Steps | Processes × threads | Wall (s) | M cell updates/s "
            "| Rel. error vs exact | Result |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in cases:
            out.append(
                "| %s | %d × %d | %d | %d × %d | %s | %s | %s | %s |"
                % (cell(c["impl"]), c["nx"], c["ny"], c["steps"], c["processes"], c["threads"], sig(c["wall_s"]),
                   sig(c["cell_updates_per_s"] / 1e6), err(c["rel_err_analytic"]), "pass" if c["pass"] else "**FAIL**")
            )
    else:
        out.append("No cases.")
    out.append("")

    out += ["## Cross-implementation comparisons", ""]
    if comps:
        out += ["| Grid | A | B | Rel. difference | Result |", "|---:|---|---|---:|---|"]
        for c in comps:
            ny = ny_of.get((c["nx"], c["a"]))
            grid = "%d × %s" % (c["nx"], "?" if ny is None else ny)
            out.append(
                "| %s | %s | %s | %s | %s |"
                % (grid, cell(c["a"]), cell(c["b"]), err(c["rel_diff"]), "pass" if c["pass"] else "**FAIL**")
            )
    else:
        out.append("No grid size was run by more than one implementation: nothing to compare.")
    out.append("")

    out += [
        "## Tolerance",
        "",
        "Relative tolerance: %r. A case passes when max |T − T_exact| / max |T_exact| ≤ %r, where T_exact "
        "is the exact solution of the discretised equation for the case's grid, steps and alpha (the "
        "initial condition's sine modes, each multiplied by its decay factor λ per sweep). A comparison "
        "passes when max |T_a − T_b| / max |T_exact| ≤ %r. The maxima are over all grid cells; a value "
        "shown as n/a was not finite (NaN in a field) and fails." % (tol, tol, tol),
        "",
        "## Throughput",
        "",
        "![Cell update rate by grid size and implementation](%s)" % markdown_link_target(plot_rel),
        "",
    ]
    return "\n".join(out)


def write_atomic(path, text):
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError("cannot write %s: %s" % (path, e.strerror or e)) from None


def main(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Write a markdown report of a heat analysis.")
    p.add_argument("--summary", required=True, metavar="SUMMARY.json", help="summary written by analyse")
    p.add_argument("--plot", required=True, metavar="PLOT.svg", help="plot written by analyse (linked, not copied)")
    p.add_argument("--out", required=True, metavar="REPORT.md", help="report to write")
    p.add_argument("--title", default=DEFAULT_TITLE, metavar="T", help="title (default: %(default)s)")
    args = p.parse_args(argv)

    summary = load_summary(args.summary)
    if not os.path.isfile(args.plot):
        raise InputError("plot %s does not exist" % args.plot)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    plot_rel = os.path.relpath(os.path.abspath(args.plot), out_dir).replace(os.sep, "/")
    write_atomic(args.out, render(summary, args.title, plot_rel))
    print("%s: wrote %s (%s)" % (PROG, args.out, "PASS" if summary["pass"] else "FAIL"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        sys.exit(2)
