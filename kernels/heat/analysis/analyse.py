#!/usr/bin/env python3
"""analyse.py - check heat kernel results against the exact solution of the discretised equation.

Python 3 + numpy twin of analyse.jl (same command line, same checks, same outputs, same exit codes),
for machines and images where Julia is not available. See README.md next to this file.

  analyse.py --results DIR --metrics DIR --tolerance TOL --summary FILE.json --plot FILE.svg

Inputs: every DIR/<impl>-<n>.bin (a HEAT field file written by a kernel started from
`heat --gen --ic modes`) with its metrics file METRICSDIR/<impl>-<n>.json (impl [a-z0-9_]+, n decimal;
other file names are ignored; a .bin without its .json, or a .json without its .bin, is an error).

Checks, with E = max |T_exact| over the grid:
  each case          rel_err_analytic = max |T - T_exact| / E            pass when <= TOL
  each pair of impls on one grid size (nx): rel_diff = max |Ta - Tb| / E  pass when <= TOL
where T_exact(i,j,s) = sum_m A_m lambda_m^s sin(p_m pi i/(nx-1)) sin(q_m pi j/(ny-1)),
lambda_m = 1 - 4 alpha (sin^2(p_m pi/(2(nx-1))) + sin^2(q_m pi/(2(ny-1)))), modes (A,p,q) = (100,1,1)
and (25,3,2), s = steps and alpha from the metrics file.

Outputs (each written to a temporary file in the same directory, then renamed; parent directories
are created): the summary JSON (2-space indent, keys in the contract's order) and a hand-written SVG
bar chart of the cell update rates. Both are deterministic functions of the inputs.

Exit status: 0 every check passes, 1 some check fails (summary and plot are still written),
2 bad usage or bad input (one line on stderr naming the file; nothing is written).
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import traceback

import numpy as np

PROG = "analyse"
HEADER = struct.Struct("<4sIId")  # "HEAT", uint32 nx, uint32 ny, float64 dx: 20 bytes
MODES = ((100.0, 1, 1), (25.0, 3, 2))  # (A, p, q) of the demo's initial condition
CASE_RE = re.compile(r"^([a-z0-9_]+)-([0-9]+)\.(bin|json)$")
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------------
# Inputs


def discover(results_dir, metrics_dir):
    """{(impl, n): (bin path, json path)}; unmatched .bin/.json names are input errors."""

    def scan(directory, ext):
        try:
            names = os.listdir(directory)
        except OSError as e:
            raise InputError("cannot read directory %s: %s" % (directory, e.strerror or e)) from None
        found = {}
        for name in names:
            m = CASE_RE.match(name)
            if m and m.group(3) == ext and os.path.isfile(os.path.join(directory, name)):
                found[(m.group(1), m.group(2))] = os.path.join(directory, name)
        return found

    bins = scan(results_dir, "bin")
    jsons = scan(metrics_dir, "json")
    for key in sorted(bins):
        if key not in jsons:
            raise InputError(
                "%s has no metrics file %s" % (bins[key], os.path.join(metrics_dir, "%s-%s.json" % key))
            )
    for key in sorted(jsons):
        if key not in bins:
            raise InputError(
                "%s has no result file %s" % (jsons[key], os.path.join(results_dir, "%s-%s.bin" % key))
            )
    if not bins:
        raise InputError("no results (<impl>-<n>.bin) in %s" % results_dir)
    return {key: (bins[key], jsons[key]) for key in bins}


def read_field(path):
    """(nx, ny, T) with T[j, i] (row j = y, column i = x, as in the file)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if len(data) < HEADER.size or data[:4] != b"HEAT":
        raise InputError("%s is not a HEAT field file (bad or short header)" % path)
    _, nx, ny, dx = HEADER.unpack_from(data)
    if nx < 3 or ny < 3 or not (math.isfinite(dx) and dx > 0):
        raise InputError("%s: bad header (nx=%d ny=%d dx=%r)" % (path, nx, ny, dx))
    if len(data) != HEADER.size + 8 * nx * ny:
        raise InputError("%s: data size does not match the header's %d x %d" % (path, nx, ny))
    t = np.frombuffer(data, dtype="<f8", offset=HEADER.size).astype(np.float64).reshape(ny, nx)
    return nx, ny, t


def _reject_constant(name):
    raise ValueError("%s is not a JSON number" % name)


def read_metrics(path):
    """The metrics the analysis uses, validated (types and ranges)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            m = json.load(f, parse_constant=_reject_constant)
    except OSError as e:
        raise InputError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError("%s is not valid JSON: %s" % (path, e)) from None
    if not isinstance(m, dict):
        raise InputError("%s: metrics must be a JSON object" % path)

    def integer(key, lo):
        v = m.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError("%s: \"%s\" must be an integer >= %d, got %s" % (path, key, lo, json.dumps(v)))
        return v

    def number(key, ok, what):
        v = m.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(float(v)):
            raise InputError("%s: \"%s\" must be %s, got %s" % (path, key, what, json.dumps(v)))
        return float(v)

    return {
        "nx": integer("nx", 3),
        "ny": integer("ny", 3),
        "steps": integer("steps", 0),
        "alpha": number("alpha", lambda v: 0.0 < v <= 0.25, "a number in (0, 0.25]"),
        "processes": integer("processes", 1),
        "threads": integer("threads", 1),
        "wall_s": number("wall_s", lambda v: math.isfinite(v) and v >= 0.0, "a number >= 0"),
        "cell_updates_per_s": number(
            "cell_updates_per_s", lambda v: math.isfinite(v) and v >= 0.0, "a number >= 0"
        ),
    }


# ---------------------------------------------------------------------------------------------------
# Checks


def exact_solution(nx, ny, steps, alpha):
    """T_exact[j, i] after `steps` sweeps; boundary cells exactly 0, like the initial condition."""
    i = np.arange(nx, dtype=np.float64)
    j = np.arange(ny, dtype=np.float64)
    t = np.zeros((ny, nx))
    for a, p, q in MODES:
        sx, sy = math.sin(p * math.pi / (2 * (nx - 1))), math.sin(q * math.pi / (2 * (ny - 1)))
        lam = 1.0 - 4.0 * alpha * (sx * sx + sy * sy)
        t += (a * lam**steps) * np.outer(np.sin(q * math.pi * j / (ny - 1)), np.sin(p * math.pi * i / (nx - 1)))
    t[0, :] = t[-1, :] = 0.0
    t[:, 0] = t[:, -1] = 0.0
    return t


def relative(num, den):
    """num / den as a Python float, or None when not finite (a NaN in a field, or den = 0)."""
    with np.errstate(all="ignore"):
        if den == 0.0:
            r = 0.0 if num == 0.0 else math.inf
        else:
            r = float(num) / float(den)
    return r if math.isfinite(r) else None


def max_abs_diff(a, b):
    with np.errstate(all="ignore"):
        d = np.abs(a - b)
    return math.nan if np.isnan(d).any() else float(d.max())


def analyse(files, tolerance):
    """(summary dict, per-case extras for the plot)."""
    cases = []
    for (impl, n), (bin_path, json_path) in files.items():
        nx, ny, t = read_field(bin_path)
        m = read_metrics(json_path)
        if (m["nx"], m["ny"]) != (nx, ny):
            raise InputError(
                "%s says %d x %d but %s holds a %d x %d field" % (json_path, m["nx"], m["ny"], bin_path, nx, ny)
            )
        exact = exact_solution(nx, ny, m["steps"], m["alpha"])
        scale = float(np.abs(exact).max())
        cases.append(
            {"impl": impl, "n": n, "bin": bin_path, "m": m, "t": t, "scale": scale,
             "rel": relative(max_abs_diff(t, exact), scale)}
        )
    cases.sort(key=lambda c: (c["m"]["nx"], c["impl"], c["m"]["ny"], int(c["n"])))

    # One grid size = one nx; within it every impl once and one shape, or the pairs are not defined.
    by_nx = {}
    for c in cases:
        by_nx.setdefault(c["m"]["nx"], []).append(c)
    comparisons = []
    for nx in sorted(by_nx):
        group = by_nx[nx]
        for k in range(1, len(group)):
            prev, c = group[k - 1], group[k]
            if c["impl"] == prev["impl"]:
                raise InputError("%s and %s are both %s results for nx = %d" % (prev["bin"], c["bin"], c["impl"], nx))
            if c["m"]["ny"] != prev["m"]["ny"]:
                raise InputError(
                    "%s (%d x %d) and %s (%d x %d) have the same nx but different ny"
                    % (prev["bin"], nx, prev["m"]["ny"], c["bin"], nx, c["m"]["ny"])
                )
        for ia in range(len(group)):
            for ib in range(ia + 1, len(group)):
                a, b = group[ia], group[ib]
                rel = relative(max_abs_diff(a["t"], b["t"]), a["scale"])
                comparisons.append(
                    {"nx": nx, "a": a["impl"], "b": b["impl"], "rel_diff": rel,
                     "pass": rel is not None and rel <= tolerance}
                )

    case_rows = []
    for c in cases:
        m = c["m"]
        case_rows.append(
            {
                "impl": c["impl"],
                "nx": m["nx"],
                "ny": m["ny"],
                "steps": m["steps"],
                "alpha": m["alpha"],
                "processes": m["processes"],
                "threads": m["threads"],
                "wall_s": m["wall_s"],
                "cell_updates_per_s": m["cell_updates_per_s"],
                "rel_err_analytic": c["rel"],
                "pass": c["rel"] is not None and c["rel"] <= tolerance,
            }
        )
    ok = all(r["pass"] for r in case_rows) and all(r["pass"] for r in comparisons)
    return {"tolerance": tolerance, "pass": ok, "cases": case_rows, "comparisons": comparisons}


# ---------------------------------------------------------------------------------------------------
# Plot: a grouped bar chart written by hand (no plotting library), deterministic text.


def _nice_step(vmax, target=5):
    raw = vmax / target
    mag = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 5.0, 10.0):
        if mult * mag >= raw * (1 - 1e-12):
            return mult * mag
    return 10.0 * mag


def _f(x):
    """A coordinate: fixed two decimals, never '-0.00'."""
    s = "%.2f" % x
    return "0.00" if s == "-0.00" else s


def render_svg(summary):
    cases = summary["cases"]
    grids = sorted({(c["nx"], c["ny"]) for c in cases})
    impls = sorted({c["impl"] for c in cases})
    rate = {(c["nx"], c["ny"], c["impl"]): c for c in cases}

    left, right, top, bottom = 80.0, 170.0, 50.0, 64.0
    plot_w = max(480.0, 110.0 * len(grids) * max(1, len(impls)) / 2.0)
    plot_h = 300.0
    width, height = left + plot_w + right, top + plot_h + bottom

    vmax = max((c["cell_updates_per_s"] / 1e6 for c in cases), default=0.0)
    step = _nice_step(vmax) if vmax > 0 else 0.2
    ymax = step * max(1, math.ceil(vmax / step - 1e-9))
    decimals = max(0, -int(math.floor(math.log10(step))))

    def y(v):
        return top + plot_h - plot_h * v / ymax

    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" '
        'font-family="sans-serif" font-size="12">' % (_f(width), _f(height), _f(width), _f(height)),
        '<text x="%s" y="24" text-anchor="middle" font-size="16" font-weight="bold">'
        "Heat kernel: cell update rate by grid size and implementation</text>" % _f(left + plot_w / 2),
    ]
    # y axis: gridlines, ticks, label
    ticks = int(round(ymax / step))
    for k in range(ticks + 1):
        v = k * step
        out.append(
            '<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#dddddd"/>'
            % (_f(left), _f(y(v)), _f(left + plot_w), _f(y(v)))
        )
        out.append(
            '<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%.*f</text>'
            % (_f(left - 6), _f(y(v)), decimals, v)
        )
    out.append(
        '<text x="20" y="%s" text-anchor="middle" transform="rotate(-90 20 %s)">'
        "million cell updates per second</text>" % (_f(top + plot_h / 2), _f(top + plot_h / 2))
    )
    # bars, one group per grid size, one slot per impl (the same slot in every group)
    group_w = plot_w / max(1, len(grids))
    bar_w = group_w * 0.8 / max(1, len(impls))
    for g, (nx, ny) in enumerate(grids):
        x0 = left + g * group_w + group_w * 0.1
        for s, impl in enumerate(impls):
            c = rate.get((nx, ny, impl))
            if c is None:
                continue
            v = c["cell_updates_per_s"] / 1e6
            x = x0 + s * bar_w
            out.append(
                '<rect x="%s" y="%s" width="%s" height="%s" fill="%s">'
                "<title>%s, %d &#215; %d: %.3f M cell updates/s%s</title></rect>"
                % (_f(x), _f(y(v)), _f(bar_w * 0.92), _f(top + plot_h - y(v)), COLOURS[s % len(COLOURS)],
                   impl, nx, ny, v, "" if c["pass"] else " (check FAILED)")
            )
            out.append(
                '<text x="%s" y="%s" text-anchor="middle" font-size="10"%s>%.3g%s</text>'
                % (_f(x + bar_w * 0.46), _f(y(v) - 4), "" if c["pass"] else ' fill="#c00000"', v,
                   "" if c["pass"] else " FAIL")
            )
        out.append(
            '<text x="%s" y="%s" text-anchor="middle">%d &#215; %d</text>'
            % (_f(left + (g + 0.5) * group_w), _f(top + plot_h + 18), nx, ny)
        )
    # axes and x label
    out.append(
        '<path d="M %s %s V %s H %s" fill="none" stroke="#000000"/>'
        % (_f(left), _f(top), _f(top + plot_h), _f(left + plot_w))
    )
    out.append(
        '<text x="%s" y="%s" text-anchor="middle">grid size (nx &#215; ny)</text>'
        % (_f(left + plot_w / 2), _f(top + plot_h + 44))
    )
    # legend (swatches are paths, so the only <rect> elements are the bars)
    lx = left + plot_w + 20
    out.append('<text x="%s" y="%s" font-weight="bold">implementation</text>' % (_f(lx), _f(top + 10)))
    for s, impl in enumerate(impls):
        ly = top + 28 + 20 * s
        out.append(
            '<path d="M %s %s h 12 v 12 h -12 z" fill="%s"/>' % (_f(lx), _f(ly - 10), COLOURS[s % len(COLOURS)])
        )
        out.append('<text x="%s" y="%s">%s</text>' % (_f(lx + 18), _f(ly), impl))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------
# Outputs and command line


def write_atomic(path, text):
    """Temporary file in the same directory, then rename: never a truncated output."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError("cannot write %s: %s" % (path, e.strerror or e)) from None


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Check heat kernel results against the exact solution of the discretised equation "
        "and against each other; write a JSON summary and an SVG plot of the cell update rates.",
        epilog="exit status: 0 all checks pass, 1 a check fails (outputs still written), 2 bad usage or input",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="directory with <impl>-<n>.bin fields")
    p.add_argument("--metrics", required=True, metavar="DIR", help="directory with <impl>-<n>.json metrics")
    p.add_argument("--tolerance", required=True, metavar="TOL", type=float, help="relative tolerance, e.g. 1e-12")
    p.add_argument("--summary", required=True, metavar="FILE.json", help="summary to write")
    p.add_argument("--plot", required=True, metavar="FILE.svg", help="plot to write")
    args = p.parse_args(argv)
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0.0):
        p.error("--tolerance must be a finite number >= 0, got %r" % args.tolerance)
    return args


def main(argv):
    args = parse_args(argv)
    summary = analyse(discover(args.results, args.metrics), args.tolerance)
    write_atomic(args.summary, json.dumps(summary, indent=2) + "\n")
    write_atomic(args.plot, render_svg(summary))
    failed = [c for c in summary["cases"] if not c["pass"]] + [c for c in summary["comparisons"] if not c["pass"]]
    print(
        "%s: %d cases, %d comparisons, tolerance %r: %s"
        % (PROG, len(summary["cases"]), len(summary["comparisons"]), args.tolerance,
           "all pass" if summary["pass"] else "%d FAILED" % len(failed))
    )
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # a bug, not a failed check: never exit 1 for it
        traceback.print_exc()
        print("%s: error: internal error: %s" % (PROG, e), file=sys.stderr)
        sys.exit(2)
