# analyse.jl - check heat kernel results against the exact solution of the discretised equation.
#
#   julia --project=kernels/heat/julia kernels/heat/analysis/analyse.jl \
#       --results DIR --metrics DIR --tolerance TOL --summary FILE.json --plot FILE.svg
#
# The Julia twin of analyse.py (same command line, same checks, same outputs, same exit codes); see
# README.md next to this file. Standard library only (no JSON or plotting package): the metrics files
# are read by a small JSON reader, the summary and the SVG are written by hand.
#
# Inputs: every DIR/<impl>-<n>.bin (a HEAT field file written by a kernel started from
# `heat --gen --ic modes`) with its metrics file METRICSDIR/<impl>-<n>.json (impl [a-z0-9_]+, n decimal;
# other file names are ignored; a .bin without its .json, or a .json without its .bin, is an error).
#
# Checks, with E = max |T_exact| over the grid:
#   each case          rel_err_analytic = max |T - T_exact| / E            pass when <= TOL
#   each pair of impls on one grid size (nx): rel_diff = max |Ta - Tb| / E  pass when <= TOL
# where T_exact(i,j,s) = sum_m A_m lambda_m^s sin(p_m pi i/(nx-1)) sin(q_m pi j/(ny-1)) (boundary
# cells exactly 0, as in the initial condition), lambda_m = 1 - 4 alpha (sin^2(p_m pi/(2(nx-1))) +
# sin^2(q_m pi/(2(ny-1)))), modes (A,p,q) = (100,1,1) and (25,3,2), s = steps and alpha from the
# metrics file. The exact solution is computed with the twin's operation order (A lambda^s times
# (sin_y sin_x), lambda^s by the C library's pow); sines may still differ from numpy's in the last bit,
# so the two twins' relative errors can differ in their last digits, never in a verdict that is not
# on a knife edge.
#
# Outputs (each written to a temporary file in the same directory, then renamed; parent directories
# are created): the summary JSON (2-space indent, keys in the contract's order, floats in Python's
# shortest round-trip `repr` form, exactly as json.dumps(summary, indent=2) + "\n" writes it) and a
# hand-written SVG bar chart of the cell update rates (the same text as analyse.py's for the same
# summary: numbers are formatted with exact, ties-to-even rounding like C's printf).
#
# Exit status: 0 every check passes, 1 some check fails (summary and plot are still written),
# 2 bad usage or bad input (one line on stderr naming the file; nothing is written).

module AnalyseHeat

const PROG = "analyse"
const HEADER_BYTES = 20
const MODES = ((100.0, 1, 1), (25.0, 3, 2))    # (A, p, q) of the demo's initial condition
const CASE_RE = r"^([a-z0-9_]+)-([0-9]+)\.(bin|json)$"
const COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
const LIBM = "libm.so.6"

"Bad input or usage: one line on stderr, exit status 2."
struct InputError <: Exception
    msg::String
end

"Bad usage: the message after the usage line, exit status 2."
struct UsageError <: Exception
    msg::String
end

errmsg(e) = e isa SystemError ? Libc.strerror(e.errnum) :
            e isa Base.IOError ? (e.code < 0 ? Libc.strerror(-e.code) : e.msg) : sprint(showerror, e)

# ----------------------------------------------------------------------------------------------------
# Number formatting, as Python and C do it

"x^y by the C library's pow (what Python's float ** uses), falling back to Julia's."
function cpow(x::Float64, y::Float64)
    try
        return ccall((:pow, LIBM), Float64, (Float64, Float64), x, y)
    catch
        return x^y
    end
end

"log10 by the C library (what Python's math.log10 uses), falling back to Julia's."
function clog10(x::Float64)
    try
        return ccall((:log10, LIBM), Float64, (Float64,), x)
    catch
        return log10(x)
    end
end

"""
Python's repr(float): the shortest digits that round-trip (Julia's `string` finds the same digits),
fixed notation for 1e-4 <= |x| < 1e16, else d.ddde+XX; `nan`/`inf` spelled as Python does.
`json` spells the non-finite values as json.dumps does (NaN, Infinity).
"""
function pyrepr(x::Float64; json::Bool = false)
    isnan(x) && return json ? "NaN" : "nan"
    isinf(x) && return x > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf")
    x == 0 && return signbit(x) ? "-0.0" : "0.0"
    s = string(abs(x))                         # e.g. "0.001", "123.456", "1.0e-5", "2.5e7"
    mant, ex = occursin('e', s) ? (split(s, 'e')[1], parse(Int, split(s, 'e')[2])) : (s, 0)
    ip, fp = occursin('.', mant) ? (split(mant, '.')[1], split(mant, '.')[2]) : (mant, "")
    digits = ip * fp
    decpt = length(ip) + ex                    # value = 0.DIGITS x 10^decpt
    z = 0
    while z < length(digits) && digits[z+1] == '0'
        z += 1
    end
    digits = digits[z+1:end]
    decpt -= z
    digits = rstrip(digits, '0')
    n = length(digits)
    sign = signbit(x) ? "-" : ""
    if decpt <= -4 || decpt > 16
        e = decpt - 1
        m = n == 1 ? digits : digits[1:1] * "." * digits[2:end]
        return sign * m * "e" * (e < 0 ? "-" : "+") * lpad(string(abs(e)), 2, '0')
    elseif decpt <= 0
        return sign * "0." * "0"^(-decpt) * digits
    elseif decpt < n
        return sign * digits[1:decpt] * "." * digits[decpt+1:end]
    else
        return sign * digits * "0"^(decpt - n) * ".0"
    end
end

ten(k::Integer) = k >= 0 ? big(10)^k // big(1) : big(1) // big(10)^(-k)

"C's %.{d}f: exact value, rounded to nearest with ties to even."
function fmt_fixed(x::Float64, d::Int)
    isnan(x) && return "nan"
    isinf(x) && return x > 0 ? "inf" : "-inf"
    n = round(BigInt, Rational{BigInt}(abs(x)) * ten(d), RoundNearest)
    s = string(n)
    if d > 0
        s = lpad(s, d + 1, '0')
        s = s[1:end-d] * "." * s[end-d+1:end]
    end
    return signbit(x) ? "-" * s : s
end

"C's %.{p}g (no '#' flag): p significant digits, trailing zeros removed."
function fmt_g(x::Float64, p::Int)
    isnan(x) && return "nan"
    isinf(x) && return x > 0 ? "inf" : "-inf"
    sign = signbit(x) ? "-" : ""
    x == 0 && return sign * "0"
    r = Rational{BigInt}(abs(x))
    e = floor(Int, log10(abs(x)))
    while r >= ten(e + 1)
        e += 1
    end
    while r < ten(e)
        e -= 1
    end
    n = round(BigInt, r / ten(e - p + 1), RoundNearest)
    if n == big(10)^p
        e += 1
        n = big(10)^(p - 1)
    end
    digits = string(n)                          # p digits
    if -4 <= e < p
        d = p - 1 - e
        s = lpad(digits, d + 1, '0')
        s = d > 0 ? s[1:end-d] * "." * s[end-d+1:end] : s
        if occursin('.', s)
            s = rstrip(rstrip(s, '0'), '.')
        end
        return sign * s
    end
    m = p == 1 ? digits : digits[1:1] * "." * digits[2:end]
    occursin('.', m) && (m = rstrip(rstrip(m, '0'), '.'))
    return sign * m * "e" * (e < 0 ? "-" : "+") * lpad(string(abs(e)), 2, '0')
end

"A coordinate: fixed two decimals, never '-0.00'."
function f2(x::Float64)
    s = fmt_fixed(x, 2)
    return s == "-0.00" ? "0.00" : s
end

# ----------------------------------------------------------------------------------------------------
# A small JSON reader: objects keep their key order (duplicate keys: the last value, at the first
# key's position, as Python's dict), numbers without fraction or exponent are integers.

struct JObject
    keys::Vector{String}
    vals::Vector{Any}
end
JObject() = JObject(String[], Any[])
function jset!(o::JObject, k::String, v)
    i = findfirst(==(k), o.keys)
    i === nothing ? (push!(o.keys, k); push!(o.vals, v)) : (o.vals[i] = v)
    return o
end
function jget(o::JObject, k::String)
    i = findfirst(==(k), o.keys)
    return i === nothing ? nothing : o.vals[i]
end

struct JSONError <: Exception
    msg::String
end

mutable struct JParser
    s::String
    i::Int          # byte index of the next character
end

"Python's JSONDecodeError text: `msg: line L column C (char P)`, P counting characters from 0."
function jerror(p::JParser, msg::AbstractString, at::Int = p.i)
    at = min(at, ncodeunits(p.s) + 1)
    pos = at > 1 ? length(p.s, 1, prevind(p.s, at)) : 0
    before = at > 1 ? p.s[1:prevind(p.s, at)] : ""
    line = count(==('\n'), before) + 1
    nl = findlast(==('\n'), before)
    col = nl === nothing ? pos + 1 : pos - length(before, 1, nl) + 1
    throw(JSONError("$msg: line $line column $col (char $pos)"))
end

peekbyte(p::JParser) = p.i <= ncodeunits(p.s) ? codeunit(p.s, p.i) : 0x00
function skipws!(p::JParser)
    while p.i <= ncodeunits(p.s) && codeunit(p.s, p.i) in (0x20, 0x09, 0x0a, 0x0d)
        p.i += 1
    end
end
startswithat(p::JParser, lit::String) =
    p.i + ncodeunits(lit) - 1 <= ncodeunits(p.s) && view(codeunits(p.s), p.i:p.i+ncodeunits(lit)-1) == codeunits(lit)

function parse_json(s::String)
    p = JParser(s, 1)
    skipws!(p)
    v = parse_value(p)
    skipws!(p)
    p.i <= ncodeunits(s) && jerror(p, "Extra data")
    return v
end

isdig(b::UInt8) = 0x30 <= b <= 0x39

function parse_value(p::JParser)
    b = peekbyte(p)
    if b == UInt8('"')
        return parse_string(p)
    elseif b == UInt8('{')
        return parse_object(p)
    elseif b == UInt8('[')
        return parse_array(p)
    elseif b == UInt8('n') && startswithat(p, "null")
        p.i += 4
        return nothing
    elseif b == UInt8('t') && startswithat(p, "true")
        p.i += 4
        return true
    elseif b == UInt8('f') && startswithat(p, "false")
        p.i += 5
        return false
    end
    num = parse_number(p)
    num === nothing || return num
    for lit in ("NaN", "Infinity", "-Infinity")     # Python accepts these; the metrics reader does not
        startswithat(p, lit) && throw(JSONError("$lit is not a JSON number"))
    end
    jerror(p, "Expecting value")
end

"Python's NUMBER_RE (-?(?:0|[1-9]\\d*))(\\.\\d+)?([eE][-+]?\\d+)? at the current position, or nothing."
function parse_number(p::JParser)
    s, n, j = p.s, ncodeunits(p.s), p.i
    j <= n && codeunit(s, j) == UInt8('-') && (j += 1)
    if j <= n && codeunit(s, j) == UInt8('0')
        j += 1
    elseif j <= n && 0x31 <= codeunit(s, j) <= 0x39
        while j <= n && isdig(codeunit(s, j))
            j += 1
        end
    else
        return nothing
    end
    isfloat = false
    if j + 1 <= n && codeunit(s, j) == UInt8('.') && isdig(codeunit(s, j + 1))
        j += 1
        while j <= n && isdig(codeunit(s, j))
            j += 1
        end
        isfloat = true
    end
    if j <= n && codeunit(s, j) in (UInt8('e'), UInt8('E'))
        k = j + 1
        k <= n && codeunit(s, k) in (UInt8('+'), UInt8('-')) && (k += 1)
        if k <= n && isdig(codeunit(s, k))
            while k <= n && isdig(codeunit(s, k))
                k += 1
            end
            j = k
            isfloat = true
        end
    end
    tok = s[p.i:j-1]
    p.i = j
    if isfloat
        return parse(Float64, tok)
    end
    v = tryparse(Int, tok)
    return v === nothing ? parse(BigInt, tok) : v
end

function parse_string(p::JParser)
    start = p.i
    p.i += 1
    s, n = p.s, ncodeunits(p.s)
    buf = IOBuffer()
    while true
        p.i > n && jerror(p, "Unterminated string starting at", start)
        b = codeunit(s, p.i)
        if b == UInt8('"')
            p.i += 1
            return String(take!(buf))
        elseif b == UInt8('\\')
            p.i + 1 > n && jerror(p, "Unterminated string starting at", start)
            e = codeunit(s, p.i + 1)
            esc = Dict(UInt8('"') => '"', UInt8('\\') => '\\', UInt8('/') => '/', UInt8('b') => '\b',
                       UInt8('f') => '\f', UInt8('n') => '\n', UInt8('r') => '\r', UInt8('t') => '\t')
            if haskey(esc, e)
                print(buf, esc[e])
                p.i += 2
            elseif e == UInt8('u')
                cp = hex4(p, p.i + 2)
                p.i += 6
                if 0xd800 <= cp <= 0xdbff && startswithat(p, "\\u")
                    lo = hex4(p, p.i + 2)
                    if 0xdc00 <= lo <= 0xdfff
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                        p.i += 6
                    end
                end
                print(buf, Char(cp))
            else
                jerror(p, "Invalid \\escape: '" * string(Char(e)) * "'", p.i)
            end
        elseif b < 0x20
            jerror(p, "Invalid control character at")
        else
            write(buf, b)
            p.i += 1
        end
    end
end

function hex4(p::JParser, at::Int)
    ok = at + 3 <= ncodeunits(p.s) && all(k -> isxdigit(Char(codeunit(p.s, k))), at:at+3)
    ok || jerror(p, "Invalid \\uXXXX escape", at - 1)
    return parse(UInt32, p.s[at:at+3]; base = 16)      # four ASCII hex digits
end

function parse_object(p::JParser)
    p.i += 1
    o = JObject()
    skipws!(p)
    if peekbyte(p) == UInt8('}')
        p.i += 1
        return o
    end
    while true
        skipws!(p)
        peekbyte(p) == UInt8('"') || jerror(p, "Expecting property name enclosed in double quotes")
        k = parse_string(p)
        skipws!(p)
        peekbyte(p) == UInt8(':') || jerror(p, "Expecting ':' delimiter")
        p.i += 1
        skipws!(p)
        jset!(o, k, parse_value(p))
        skipws!(p)
        b = peekbyte(p)
        if b == UInt8('}')
            p.i += 1
            return o
        end
        b == UInt8(',') || jerror(p, "Expecting ',' delimiter")
        p.i += 1
    end
end

function parse_array(p::JParser)
    p.i += 1
    a = Any[]
    skipws!(p)
    if peekbyte(p) == UInt8(']')
        p.i += 1
        return a
    end
    while true
        skipws!(p)
        push!(a, parse_value(p))
        skipws!(p)
        b = peekbyte(p)
        if b == UInt8(']')
            p.i += 1
            return a
        end
        b == UInt8(',') || jerror(p, "Expecting ',' delimiter")
        p.i += 1
    end
end

"json.dumps of a string (ensure_ascii): printable ASCII as is, the rest escaped."
function jstring(s::AbstractString)
    io = IOBuffer()
    print(io, '"')
    for c in s
        if c == '"'
            print(io, "\\\"")
        elseif c == '\\'
            print(io, "\\\\")
        elseif c == '\n'
            print(io, "\\n")
        elseif c == '\r'
            print(io, "\\r")
        elseif c == '\t'
            print(io, "\\t")
        elseif c == '\b'
            print(io, "\\b")
        elseif c == '\f'
            print(io, "\\f")
        elseif ' ' <= c <= '~'
            print(io, c)
        else
            u = UInt32(c)
            if u > 0xffff
                v = u - 0x10000
                print(io, "\\u", string(0xd800 + (v >> 10); base = 16, pad = 4),
                      "\\u", string(0xdc00 + (v & 0x3ff); base = 16, pad = 4))
            else
                print(io, "\\u", string(u; base = 16, pad = 4))
            end
        end
    end
    print(io, '"')
    return String(take!(io))
end

"json.dumps(v) with its default separators, for messages."
function pydumps(v)
    v === nothing && return "null"
    v isa Bool && return v ? "true" : "false"
    v isa Integer && return string(v)
    v isa Float64 && return pyrepr(v; json = true)
    v isa AbstractString && return jstring(v)
    v isa AbstractVector && return "[" * join((pydumps(x) for x in v), ", ") * "]"
    v isa JObject && return "{" * join((jstring(k) * ": " * pydumps(x) for (k, x) in zip(v.keys, v.vals)), ", ") * "}"
    return string(v)
end

# ----------------------------------------------------------------------------------------------------
# Inputs

"{(impl, n) => (bin path, json path)}; unmatched .bin/.json names are input errors."
function discover(results_dir::String, metrics_dir::String)
    function scan(dir, ext)
        names = try
            readdir(dir)
        catch e
            throw(InputError("cannot read directory $dir: $(errmsg(e))"))
        end
        found = Dict{Tuple{String,String},String}()
        for name in names
            m = match(CASE_RE, name)
            if m !== nothing && m.captures[3] == ext && isfile(joinpath(dir, name))
                found[(String(m.captures[1]), String(m.captures[2]))] = joinpath(dir, name)
            end
        end
        return found
    end
    bins = scan(results_dir, "bin")
    jsons = scan(metrics_dir, "json")
    for key in sort!(collect(keys(bins)))
        haskey(jsons, key) || throw(InputError(
            "$(bins[key]) has no metrics file $(joinpath(metrics_dir, "$(key[1])-$(key[2]).json"))"))
    end
    for key in sort!(collect(keys(jsons)))
        haskey(bins, key) || throw(InputError(
            "$(jsons[key]) has no result file $(joinpath(results_dir, "$(key[1])-$(key[2]).bin"))"))
    end
    isempty(bins) && throw(InputError("no results (<impl>-<n>.bin) in $results_dir"))
    return Dict(key => (bins[key], jsons[key]) for key in keys(bins))
end

"(nx, ny, T) with T[i+1, j+1] = cell (i, j) (the file's memory order)."
function read_field(path::String)
    data = try
        read(path)
    catch e
        throw(InputError("cannot read $path: $(errmsg(e))"))
    end
    if length(data) < HEADER_BYTES || data[1:4] != UInt8['H', 'E', 'A', 'T']
        throw(InputError("$path is not a HEAT field file (bad or short header)"))
    end
    nx = Int(ltoh(reinterpret(UInt32, data[5:8])[1]))
    ny = Int(ltoh(reinterpret(UInt32, data[9:12])[1]))
    dx = ltoh(reinterpret(Float64, data[13:20])[1])
    if nx < 3 || ny < 3 || !(isfinite(dx) && dx > 0)
        throw(InputError("$path: bad header (nx=$nx ny=$ny dx=$(pyrepr(dx)))"))
    end
    length(data) == HEADER_BYTES + 8 * big(nx) * ny ||
        throw(InputError("$path: data size does not match the header's $nx x $ny"))
    t = ltoh.(reinterpret(Float64, data[HEADER_BYTES+1:end]))
    return nx, ny, reshape(collect(t), nx, ny)
end

"The metrics the analysis uses, validated (types and ranges) as analyse.py does."
function read_metrics(path::String)
    text = try
        read(path, String)
    catch e
        throw(InputError("cannot read $path: $(errmsg(e))"))
    end
    isvalid(String, text) || throw(InputError("$path is not valid JSON: it is not UTF-8 text"))
    m = try
        parse_json(text)
    catch e
        e isa JSONError || rethrow()
        throw(InputError("$path is not valid JSON: $(e.msg)"))
    end
    m isa JObject || throw(InputError("$path: metrics must be a JSON object"))

    function integer(key, lo)
        v = jget(m, key)
        (v isa Bool || !(v isa Integer) || v < lo) &&
            throw(InputError("$path: \"$key\" must be an integer >= $lo, got $(pydumps(v))"))
        return Int(v)
    end
    function number(key, ok, what)
        v = jget(m, key)
        (v isa Bool || !(v isa Union{Integer,Float64}) || !ok(Float64(v))) &&
            throw(InputError("$path: \"$key\" must be $what, got $(pydumps(v))"))
        return Float64(v)
    end
    return (nx = integer("nx", 3),
            ny = integer("ny", 3),
            steps = integer("steps", 0),
            alpha = number("alpha", v -> 0.0 < v <= 0.25, "a number in (0, 0.25]"),
            processes = integer("processes", 1),
            threads = integer("threads", 1),
            wall_s = number("wall_s", v -> isfinite(v) && v >= 0.0, "a number >= 0"),
            cell_updates_per_s = number("cell_updates_per_s", v -> isfinite(v) && v >= 0.0, "a number >= 0"))
end

# ----------------------------------------------------------------------------------------------------
# Checks

"T_exact after `steps` sweeps, T[i+1, j+1]; boundary cells exactly 0, like the initial condition."
function exact_solution(nx::Int, ny::Int, steps::Int, alpha::Float64)
    t = zeros(nx, ny)
    for (a, p, q) in MODES
        sx1 = sin(p * pi / (2 * (nx - 1)))
        sy1 = sin(q * pi / (2 * (ny - 1)))
        lam = 1.0 - 4.0 * alpha * (sx1 * sx1 + sy1 * sy1)
        amp = a * cpow(lam, Float64(steps))
        sx = [sin(p * pi * Float64(i) / (nx - 1)) for i in 0:nx-1]
        sy = [sin(q * pi * Float64(j) / (ny - 1)) for j in 0:ny-1]
        for j in 1:ny, i in 1:nx
            t[i, j] += amp * (sy[j] * sx[i])
        end
    end
    t[:, 1] .= 0.0
    t[:, ny] .= 0.0
    t[1, :] .= 0.0
    t[nx, :] .= 0.0
    return t
end

"num / den, or nothing when not finite (a NaN in a field, or den = 0 with num != 0)."
function relative(num::Float64, den::Float64)
    r = den == 0.0 ? (num == 0.0 ? 0.0 : Inf) : num / den
    return isfinite(r) ? r : nothing
end

function max_abs_diff(a::Matrix{Float64}, b::Matrix{Float64})
    m = 0.0
    for k in eachindex(a, b)
        d = abs(a[k] - b[k])
        isnan(d) && return NaN
        d > m && (m = d)
    end
    return m
end

maxabs(a) = maximum(abs, a)

struct Case
    impl::String
    n::BigInt
    bin::String
    m::NamedTuple
    t::Matrix{Float64}
    scale::Float64
    rel::Union{Nothing,Float64}
end

function analyse(files, tolerance::Float64)
    cases = Case[]
    for key in sort!(collect(keys(files)))
        (impl, n) = key
        bin_path, json_path = files[key]
        nx, ny, t = read_field(bin_path)
        m = read_metrics(json_path)
        (m.nx, m.ny) == (nx, ny) || throw(InputError(
            "$json_path says $(m.nx) x $(m.ny) but $bin_path holds a $nx x $ny field"))
        exact = exact_solution(nx, ny, m.steps, m.alpha)
        scale = maxabs(exact)
        push!(cases, Case(impl, parse(BigInt, n), bin_path, m, t, scale, relative(max_abs_diff(t, exact), scale)))
    end
    sort!(cases; by = c -> (c.m.nx, c.impl, c.m.ny, c.n))

    # One grid size = one nx; within it every impl once and one shape, or the pairs are not defined.
    nxs = sort!(unique(c.m.nx for c in cases))
    comparisons = NamedTuple[]
    for nx in nxs
        group = [c for c in cases if c.m.nx == nx]
        for k in 2:length(group)
            prev, c = group[k-1], group[k]
            c.impl == prev.impl && throw(InputError(
                "$(prev.bin) and $(c.bin) are both $(c.impl) results for nx = $nx"))
            c.m.ny == prev.m.ny || throw(InputError(
                "$(prev.bin) ($nx x $(prev.m.ny)) and $(c.bin) ($nx x $(c.m.ny)) have the same nx but different ny"))
        end
        for ia in 1:length(group), ib in ia+1:length(group)
            a, b = group[ia], group[ib]
            rel = relative(max_abs_diff(a.t, b.t), a.scale)
            push!(comparisons, (nx = nx, a = a.impl, b = b.impl, rel_diff = rel,
                                pass = rel !== nothing && rel <= tolerance))
        end
    end

    rows = [(impl = c.impl, nx = c.m.nx, ny = c.m.ny, steps = c.m.steps, alpha = c.m.alpha,
             processes = c.m.processes, threads = c.m.threads, wall_s = c.m.wall_s,
             cell_updates_per_s = c.m.cell_updates_per_s, rel_err_analytic = c.rel,
             pass = c.rel !== nothing && c.rel <= tolerance) for c in cases]
    ok = all(r -> r.pass, rows) && all(r -> r.pass, comparisons)
    return (tolerance = tolerance, pass = ok, cases = rows, comparisons = comparisons)
end

# ----------------------------------------------------------------------------------------------------
# Summary JSON: json.dumps(summary, indent=2) + "\n", by hand.

jvalue(v::Nothing) = "null"
jvalue(v::Bool) = v ? "true" : "false"
jvalue(v::Integer) = string(v)
jvalue(v::Float64) = pyrepr(v; json = true)
jvalue(v::AbstractString) = jstring(v)

function jrecord(io::IO, r::NamedTuple, indent::String)
    print(io, "{\n")
    ks = keys(r)
    for (k, key) in enumerate(ks)
        print(io, indent, "  ", jstring(String(key)), ": ", jvalue(r[key]), k < length(ks) ? ",\n" : "\n")
    end
    print(io, indent, "}")
end

function jlist(io::IO, rows, indent::String)
    if isempty(rows)
        print(io, "[]")
        return
    end
    print(io, "[\n")
    for (k, r) in enumerate(rows)
        print(io, indent, "  ")
        jrecord(io, r, indent * "  ")
        print(io, k < length(rows) ? ",\n" : "\n")
    end
    print(io, indent, "]")
end

function summary_json(s)
    io = IOBuffer()
    print(io, "{\n")
    print(io, "  \"tolerance\": ", jvalue(s.tolerance), ",\n")
    print(io, "  \"pass\": ", jvalue(s.pass), ",\n")
    print(io, "  \"cases\": ")
    jlist(io, s.cases, "  ")
    print(io, ",\n  \"comparisons\": ")
    jlist(io, s.comparisons, "  ")
    print(io, "\n}\n")
    return String(take!(io))
end

# ----------------------------------------------------------------------------------------------------
# Plot: a grouped bar chart written by hand (no plotting library), deterministic text, the same as
# analyse.py's render_svg for the same summary.

function nice_step(vmax::Float64; target::Int = 5)
    raw = vmax / target
    mag = cpow(10.0, Float64(floor(Int, clog10(raw))))
    for mult in (1.0, 2.0, 5.0, 10.0)
        mult * mag >= raw * (1 - 1e-12) && return mult * mag
    end
    return 10.0 * mag
end

function render_svg(s)
    cases = s.cases
    grids = sort!(unique((c.nx, c.ny) for c in cases))
    impls = sort!(unique(c.impl for c in cases))
    rate = Dict((c.nx, c.ny, c.impl) => c for c in cases)

    left, right, top, bottom = 80.0, 170.0, 50.0, 64.0
    plot_w = max(480.0, 110.0 * length(grids) * max(1, length(impls)) / 2.0)
    plot_h = 300.0
    width, height = left + plot_w + right, top + plot_h + bottom

    vmax = isempty(cases) ? 0.0 : maximum(c.cell_updates_per_s / 1e6 for c in cases)
    step = vmax > 0 ? nice_step(vmax) : 0.2
    ymax = step * max(1, ceil(Int, vmax / step - 1e-9))
    decimals = max(0, -floor(Int, clog10(step)))
    y(v) = top + plot_h - plot_h * v / ymax

    out = String[
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"$(f2(width))\" height=\"$(f2(height))\" viewBox=\"0 0 $(f2(width)) $(f2(height))\" font-family=\"sans-serif\" font-size=\"12\">",
        "<text x=\"$(f2(left + plot_w / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">Heat kernel: cell update rate by grid size and implementation</text>",
    ]
    # y axis: gridlines, ticks, label
    ticks = round(Int, ymax / step)
    for k in 0:ticks
        v = k * step
        push!(out, "<line x1=\"$(f2(left))\" y1=\"$(f2(y(v)))\" x2=\"$(f2(left + plot_w))\" y2=\"$(f2(y(v)))\" stroke=\"#dddddd\"/>")
        push!(out, "<text x=\"$(f2(left - 6))\" y=\"$(f2(y(v)))\" text-anchor=\"end\" dominant-baseline=\"middle\">$(fmt_fixed(v, decimals))</text>")
    end
    push!(out, "<text x=\"20\" y=\"$(f2(top + plot_h / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 20 $(f2(top + plot_h / 2)))\">million cell updates per second</text>")
    # bars, one group per grid size, one slot per impl (the same slot in every group)
    group_w = plot_w / max(1, length(grids))
    bar_w = group_w * 0.8 / max(1, length(impls))
    for (g0, (nx, ny)) in enumerate(grids)
        g = g0 - 1
        x0 = left + g * group_w + group_w * 0.1
        for (s1, impl) in enumerate(impls)
            sl = s1 - 1
            c = get(rate, (nx, ny, impl), nothing)
            c === nothing && continue
            v = c.cell_updates_per_s / 1e6
            x = x0 + sl * bar_w
            colour = COLOURS[sl%length(COLOURS)+1]
            push!(out, "<rect x=\"$(f2(x))\" y=\"$(f2(y(v)))\" width=\"$(f2(bar_w * 0.92))\" height=\"$(f2(top + plot_h - y(v)))\" fill=\"$colour\"><title>$impl, $nx &#215; $ny: $(fmt_fixed(v, 3)) M cell updates/s$(c.pass ? "" : " (check FAILED)")</title></rect>")
            push!(out, "<text x=\"$(f2(x + bar_w * 0.46))\" y=\"$(f2(y(v) - 4))\" text-anchor=\"middle\" font-size=\"10\"$(c.pass ? "" : " fill=\"#c00000\"")>$(fmt_g(v, 3))$(c.pass ? "" : " FAIL")</text>")
        end
        push!(out, "<text x=\"$(f2(left + (g + 0.5) * group_w))\" y=\"$(f2(top + plot_h + 18))\" text-anchor=\"middle\">$nx &#215; $ny</text>")
    end
    # axes and x label
    push!(out, "<path d=\"M $(f2(left)) $(f2(top)) V $(f2(top + plot_h)) H $(f2(left + plot_w))\" fill=\"none\" stroke=\"#000000\"/>")
    push!(out, "<text x=\"$(f2(left + plot_w / 2))\" y=\"$(f2(top + plot_h + 44))\" text-anchor=\"middle\">grid size (nx &#215; ny)</text>")
    # legend (swatches are paths, so the only <rect> elements are the bars)
    lx = left + plot_w + 20
    push!(out, "<text x=\"$(f2(lx))\" y=\"$(f2(top + 10))\" font-weight=\"bold\">implementation</text>")
    for (s1, impl) in enumerate(impls)
        sl = s1 - 1
        ly = top + 28 + 20 * sl
        push!(out, "<path d=\"M $(f2(lx)) $(f2(ly - 10)) h 12 v 12 h -12 z\" fill=\"$(COLOURS[sl%length(COLOURS)+1])\"/>")
        push!(out, "<text x=\"$(f2(lx + 18))\" y=\"$(f2(ly))\">$impl</text>")
    end
    push!(out, "</svg>")
    return join(out, "\n") * "\n"
end

# ----------------------------------------------------------------------------------------------------
# Outputs and command line

"Temporary file in the same directory, then rename: never a truncated output."
function write_atomic(path::String, text::String)
    dir = isempty(dirname(path)) ? "." : dirname(path)
    try
        mkpath(dir)
        tmp = joinpath(dir, ".$(basename(path)).tmp.$(getpid())")
        write(tmp, text)
        Base.rename(tmp, path)
    catch e
        throw(InputError("cannot write $path: $(errmsg(e))"))
    end
    return nothing
end

const USAGE_LINE = "usage: analyse [-h] --results DIR --metrics DIR --tolerance TOL --summary FILE.json --plot FILE.svg"
const HELP = USAGE_LINE * "\n\n" * """
Check heat kernel results against the exact solution of the discretised equation and against each
other; write a JSON summary and an SVG plot of the cell update rates.

options:
  -h, --help           show this help message and exit
  --results DIR        directory with <impl>-<n>.bin fields
  --metrics DIR        directory with <impl>-<n>.json metrics
  --tolerance TOL      relative tolerance, e.g. 1e-12
  --summary FILE.json  summary to write
  --plot FILE.svg      plot to write

exit status: 0 all checks pass, 1 a check fails (outputs still written), 2 bad usage or input
"""
const OPTIONS = ("--results", "--metrics", "--tolerance", "--summary", "--plot")

"Like argparse: --opt VALUE or --opt=VALUE, unique prefixes accepted, the last one counts."
function parse_args(args::Vector{String})
    vals = Dict{String,String}()
    k = 1
    while k <= length(args)
        a = args[k]
        if a == "-h" || a == "--help"
            return nothing
        end
        name, value = occursin('=', a) && startswith(a, "--") ? (split(a, '='; limit = 2)...,) : (a, nothing)
        if !startswith(name, "--")
            throw(UsageError("unrecognized arguments: $a"))
        end
        matches = [o for o in OPTIONS if startswith(o, name)]
        exact = name in OPTIONS ? [String(name)] : matches
        length(exact) == 1 || throw(UsageError(isempty(exact) ? "unrecognized arguments: $a" :
            "ambiguous option: $name could match $(join(exact, ", "))"))
        opt = exact[1]
        if value === nothing
            (k + 1 <= length(args) && !startswith(args[k+1], "--")) ||
                throw(UsageError("argument $opt: expected one argument"))
            value = args[k+1]
            k += 2
        else
            k += 1
        end
        vals[opt] = String(value)
    end
    missing_opts = [o for o in OPTIONS if !haskey(vals, o)]
    isempty(missing_opts) ||
        throw(UsageError("the following arguments are required: $(join(missing_opts, ", "))"))
    tol = tryparse(Float64, strip(vals["--tolerance"]))
    tol === nothing && throw(UsageError("argument --tolerance: invalid float value: '$(vals["--tolerance"])'"))
    (isfinite(tol) && tol >= 0.0) ||
        throw(UsageError("--tolerance must be a finite number >= 0, got $(pyrepr(tol))"))
    return (results = vals["--results"], metrics = vals["--metrics"], tolerance = tol,
            summary = vals["--summary"], plot = vals["--plot"])
end

function run_analysis(a)
    summary = analyse(discover(a.results, a.metrics), a.tolerance)
    write_atomic(a.summary, summary_json(summary))
    write_atomic(a.plot, render_svg(summary))
    failed = count(r -> !r.pass, summary.cases) + count(r -> !r.pass, summary.comparisons)
    println("$PROG: $(length(summary.cases)) cases, $(length(summary.comparisons)) comparisons, tolerance $(pyrepr(a.tolerance)): ",
            summary.pass ? "all pass" : "$failed FAILED")
    return summary.pass ? 0 : 1
end

function main(args::Vector{String})
    try
        a = parse_args(args)
        if a === nothing
            print(stdout, HELP)
            return 0
        end
        return run_analysis(a)
    catch e
        if e isa UsageError
            println(stderr, USAGE_LINE)
            println(stderr, "$PROG: error: ", e.msg)
        elseif e isa InputError
            println(stderr, "$PROG: error: ", e.msg)
        else                                   # a bug, not a failed check: never exit 1 for it
            showerror(stderr, e, catch_backtrace())
            println(stderr)
            println(stderr, "$PROG: error: internal error: ", sprint(showerror, e))
        end
        return 2
    end
end

end # module AnalyseHeat

if abspath(PROGRAM_FILE) == @__FILE__
    exit(AnalyseHeat.main(ARGS))
end
