# heat.jl - 2-D heat diffusion with an explicit Jacobi 5-point stencil, parallelised with Julia threads.
#
#   julia --project=kernels/heat/julia --threads=N kernels/heat/julia/heat.jl \
#       --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]
#
# The Julia twin of the C/OpenMP kernel (kernels/heat/openmp/heat.c): same field file, same sweep, same
# outputs, and the same bits. Field file (little-endian): "HEAT" (4 bytes), uint32 nx, uint32 ny,
# float64 dx, then nx*ny float64, row-major (x fastest). Boundary cells keep their values (Dirichlet).
#
# Layout: Julia arrays are column-major, so the field is held as an nx x ny Matrix whose COLUMN j+1 is
# the file's ROW j (cell (i, j) is t[i+1, j+1]); the file's byte order is then exactly the matrix's
# memory order, and read!/write move the data without reshuffling.
#
# Determinism (bitwise identical to the C kernel for any thread count):
#   - every interior cell is computed by exactly the C expression, in the same order:
#       out[i] = row[i] + alpha * ((row[i-1] + row[i+1]) + (up[i] + dn[i]) - 4.0 * row[i])
#     Julia never contracts a*b+c into a fused multiply-add unless asked to (@fastmath, muladd, fma);
#     neither is used here. @simd is only on the stencil loop, which has no reduction, so it cannot
#     reassociate anything (it only allows reassociating reductions).
#   - the residual is summed per row (sequentially in i) inside the threaded loop, then over rows in
#     row order; the checksum is one sequential sum over all cells in file order. Both are therefore the
#     same whatever the number of threads, and the same as heat.c. (Base.sum would use pairwise
#     summation and change the last bits, so explicit loops are used.)
#
# The sweep kernel (sweep!) and the I/O helpers are shared with heat_distributed.jl and mpi/heat_mpi.jl,
# which include this file; the command line below only runs when this file is the program.

module HeatJulia

using Printf

const HEADER_BYTES = 20
const MAX_DIM = 1 << 20
const LITTLE_ENDIAN_HOST = ENDIAN_BOM == 0x04030201

"A bad command line: message on stderr with the usage, exit status 2."
struct UsageError <: Exception
    msg::String
end

"An I/O or data error: `heat: error: <msg>` on stderr, exit status 1."
struct HeatError <: Exception
    msg::String
end

const USAGE = """
usage: heat.jl --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]
  --in FILE       initial field (HEAT binary file)
  --steps S       Jacobi sweeps to run (default 0: write the initial field)
  --alpha A       diffusion number kappa*dt/dx^2, 0 < A <= 0.25 (default 0.25)
  --out FILE      final field (HEAT binary file)
  --metrics FILE  metrics as JSON (one line)
threads: start julia with --threads=N (N default threads; see Threads.nthreads(:default))
"""

"The solver's options; `extra` holds the values of the caller-specific valued options."
struct Options
    input::String
    output::String
    metrics::String      # "" = no metrics file
    steps::Int
    alpha::Float64
    extra::Dict{String,String}
end

"""
    parse_args(args; extra=()) -> Options, or `nothing` for --help

Parses the common solver options by hand (like heat.c); `extra` names further valued options
(`--name VALUE`) that a caller accepts, returned in `Options.extra`. Throws `UsageError`.
"""
function parse_args(args::AbstractVector{<:AbstractString}; extra = ())
    input = ""
    output = ""
    metrics = ""
    steps = 0
    alpha = 0.25
    ext = Dict{String,String}()
    valued = ("--in", "--out", "--metrics", "--steps", "--alpha", extra...)
    k = 1
    while k <= length(args)
        o = String(args[k])
        if o == "-h" || o == "--help"
            return nothing
        end
        if !(o in valued)
            throw(UsageError(startswith(o, "--") ? "unknown option '$o'" : "unexpected argument '$o'"))
        end
        k + 1 <= length(args) || throw(UsageError("$o needs a value"))
        v = String(args[k+1])
        k += 2
        if o == "--in"
            input = v
        elseif o == "--out"
            output = v
        elseif o == "--metrics"
            metrics = v
        elseif o == "--steps"
            s = tryparse(Int, v)
            (s === nothing || s < 0 || s > 1_000_000_000) &&
                throw(UsageError("--steps wants an integer in [0, 1000000000], got '$v'"))
            steps = s
        elseif o == "--alpha"
            a = tryparse(Float64, v)
            (a === nothing || !isfinite(a)) && throw(UsageError("--alpha wants a number, got '$v'"))
            alpha = a
        else
            ext[o] = v
        end
    end
    isempty(input) && throw(UsageError("--in FILE is required"))
    isempty(output) && throw(UsageError("--out FILE is required"))
    (alpha > 0.0 && alpha <= 0.25) ||
        throw(UsageError(@sprintf("--alpha must be in (0, 0.25] for stability, got %g", alpha)))
    return Options(input, output, metrics, steps, alpha, ext)
end

"The reason an I/O call failed, as C's strerror would give it when there is an errno."
errmsg(e) = e isa SystemError ? Libc.strerror(e.errnum) :
            e isa Base.IOError ? (e.code < 0 ? Libc.strerror(-e.code) : e.msg) : sprint(showerror, e)

# ----------------------------------------------------------------------------------------------------
# Field I/O

struct Field
    nx::Int
    ny::Int
    dx::Float64
    t::Matrix{Float64}   # nx x ny, t[i+1, j+1] = cell (i, j)
end

"""
An nx x ny field of zeros, each column (a row of the field) first touched by the thread that updates it
under the static schedule, so on a NUMA node its pages land next to that thread (like heat.c).
"""
function alloc_field(nx::Int, ny::Int)
    t = Matrix{Float64}(undef, nx, ny)
    Threads.@threads :static for j in 1:ny
        @inbounds for i in 1:nx
            t[i, j] = 0.0
        end
    end
    return t
end

function read_field(path::AbstractString)
    io = try
        open(path, "r")
    catch e
        throw(HeatError("cannot open $path: $(errmsg(e))"))
    end
    try
        hdr = read(io, HEADER_BYTES)
        if length(hdr) != HEADER_BYTES || String(hdr[1:4]) != "HEAT"
            throw(HeatError("$path is not a HEAT field file (bad or short header)"))
        end
        b = IOBuffer(hdr)
        skip(b, 4)
        nx = Int(ltoh(read(b, UInt32)))
        ny = Int(ltoh(read(b, UInt32)))
        dx = ltoh(read(b, Float64))
        if nx < 3 || ny < 3 || nx > MAX_DIM || ny > MAX_DIM || !(dx > 0) || !isfinite(dx)
            throw(HeatError(@sprintf("%s: bad header (nx=%d ny=%d dx=%g)", path, nx, ny, dx)))
        end
        t = alloc_field(nx, ny)
        short = false
        try
            read!(io, t)
        catch e
            e isa EOFError || rethrow()
            short = true
        end
        (short || !eof(io)) && throw(HeatError("$path: data size does not match the header's $nx x $ny"))
        LITTLE_ENDIAN_HOST || map!(ltoh, t, t)
        for k in eachindex(t)
            isfinite(t[k]) || throw(HeatError("$path: non-finite value at cell $(k - 1)"))
        end
        return Field(nx, ny, dx, t)
    catch e
        e isa HeatError && rethrow()
        throw(HeatError("cannot read $path: $(errmsg(e))"))
    finally
        close(io)
    end
end

"""
    write_output(f, path)

Calls `f(io)` on a temporary file next to `path`, then renames it into place, so an interrupted run
never leaves a truncated file that looks like a result; missing parent directories are created.
"""
function write_output(f::Function, path::AbstractString)
    dir = dirname(path)
    if !isempty(dir)
        try
            mkpath(dir)
        catch e
            throw(HeatError("cannot create directory $dir: $(errmsg(e))"))
        end
    end
    tmp = "$path.tmp.$(getpid())"
    try
        open(f, tmp, "w")
    catch e
        rm(tmp; force = true)
        throw(HeatError("cannot write $tmp: $(errmsg(e))"))
    end
    try
        Base.rename(tmp, path)   # rename(2): atomic replacement of an existing file
    catch e
        rm(tmp; force = true)
        throw(HeatError("cannot rename $tmp to $path: $(errmsg(e))"))
    end
    return path
end

function write_field(path::AbstractString, nx::Int, ny::Int, dx::Float64, t::Matrix{Float64})
    write_output(path) do io
        write(io, "HEAT")
        write(io, htol(UInt32(nx)))
        write(io, htol(UInt32(ny)))
        write(io, htol(dx))
        write(io, LITTLE_ENDIAN_HOST ? t : htol.(t))
    end
end

# ----------------------------------------------------------------------------------------------------
# The sweep

"One row of one sweep: column j of `a` (with its neighbours j-1, j+1) into column j of `b`."
@inline function sweep_row!(b::Matrix{Float64}, a::Matrix{Float64}, j::Int, nx::Int, alpha::Float64)
    @inbounds @simd for i in 2:nx-1
        b[i, j] = a[i, j] + alpha * ((a[i-1, j] + a[i+1, j]) + (a[i, j-1] + a[i, j+1]) - 4.0 * a[i, j])
    end
    return nothing
end

"Sum over the interior of row j of the squared change; sequential in i, like heat.c (no @simd)."
@inline function row_residual(b::Matrix{Float64}, a::Matrix{Float64}, j::Int, nx::Int)
    r = 0.0
    @inbounds for i in 2:nx-1
        d = b[i, j] - a[i, j]
        r += d * d
    end
    return r
end

"""
    sweep!(b, a, jlo, jhi, alpha, rowres, last)

One Jacobi sweep of columns (field rows) jlo:jhi of `a` into `b`, rows divided statically among the
default threads. With `last`, `rowres[j]` receives row j's sum of squared changes.
"""
function sweep!(b::Matrix{Float64}, a::Matrix{Float64}, jlo::Int, jhi::Int, alpha::Float64,
                rowres::Vector{Float64}, last::Bool)
    nx = size(a, 1)
    Threads.@threads :static for j in jlo:jhi
        sweep_row!(b, a, j, nx, alpha)
        if last
            @inbounds rowres[j] = row_residual(b, a, j, nx)
        end
    end
    return nothing
end

"""
    solve!(a, b, alpha, steps, rowres) -> the buffer holding the result

Runs `steps` sweeps from `a` (`b` must hold the same boundary); every sweep reads one buffer and
writes the other.
"""
function solve!(a::Matrix{Float64}, b::Matrix{Float64}, alpha::Float64, steps::Int, rowres::Vector{Float64})
    ny = size(a, 2)
    for s in 1:steps
        sweep!(b, a, 2, ny - 1, alpha, rowres, s == steps)
        a, b = b, a
    end
    return a
end

"Compiles the sweep before anything is timed (Julia compiles a method at its first call)."
function warmup()
    a = zeros(4, 4)
    solve!(a, copy(a), 0.25, 2, zeros(4))
    return nothing
end

"sqrt of the row sums added in row order (heat.c's order)."
function residual(rowres::Vector{Float64})
    s = 0.0
    @inbounds for j in eachindex(rowres)
        s += rowres[j]
    end
    return sqrt(s)
end

"Sum of all cells, sequentially in file order (heat.c's order)."
function checksum(t::Matrix{Float64})
    c = 0.0
    @inbounds for k in eachindex(t)
        c += t[k]
    end
    return c
end

update_rate(nx, ny, steps, wall) = (u = Float64(nx - 2) * Float64(ny - 2) * Float64(steps);
                                    u > 0 && wall > 0 ? u / wall : 0.0)

"The one-line metrics object of the contract; floats as %.17g, like heat.c."
function metrics_json(kernel, nx, ny, steps, alpha, processes, threads, wall, rate, res, chk)
    return @sprintf("{\"kernel\":\"%s\",\"impl\":\"julia\",\"nx\":%d,\"ny\":%d,\"steps\":%d,\"alpha\":%.17g,\"processes\":%d,\"threads\":%d,\"wall_s\":%.17g,\"cell_updates_per_s\":%.17g,\"residual\":%.17g,\"checksum\":%.17g}\n",
                    kernel, nx, ny, steps, alpha, processes, threads, wall, rate, res, chk)
end

function write_metrics(path::AbstractString, text::AbstractString)
    isempty(path) && return nothing
    write_output(io -> write(io, text), path)
    return nothing
end

function summary_line(nx, ny, steps, alpha, processes, threads, wall, rate, res, chk)
    return @sprintf("heat: %d x %d, %d steps, alpha %g, %d processes x %d threads: %.4f s, %.3e cell updates/s, residual %.6e, checksum %.10e",
                    nx, ny, steps, alpha, processes, threads, wall, rate, res, chk)
end

# ----------------------------------------------------------------------------------------------------
# The threaded program

function run_threads(opts::Options)
    f = read_field(opts.input)
    nx, ny = f.nx, f.ny
    a = f.t
    b = alloc_field(nx, ny)
    copyto!(b, a)                      # the boundary lives in both buffers
    rowres = zeros(ny)
    threads = Threads.nthreads(:default)

    warmup()
    t0 = time_ns()
    result = solve!(a, b, opts.alpha, opts.steps, rowres)
    wall = (time_ns() - t0) / 1e9

    res = residual(rowres)
    chk = checksum(result)
    rate = update_rate(nx, ny, opts.steps, wall)
    write_field(opts.output, nx, ny, f.dx, result)
    write_metrics(opts.metrics,
                  metrics_json("heat-julia", nx, ny, opts.steps, opts.alpha, 1, threads, wall, rate, res, chk))
    println(summary_line(nx, ny, opts.steps, opts.alpha, 1, threads, wall, rate, res, chk))
    return nothing
end

"Prints `heat: <msg>` and the usage on stderr (exit status 2 is the caller's)."
function report_usage(msg::AbstractString, usage::AbstractString = USAGE)
    println(stderr, "heat: ", msg)
    print(stderr, usage)
    return 2
end

"Runs `f()`; a HeatError becomes `heat: error: ...` and exit status 1."
function guarded(f::Function)
    try
        f()
    catch e
        e isa HeatError || rethrow()
        println(stderr, "heat: error: ", e.msg)
        return 1
    end
    return 0
end

function main(args::Vector{String})
    opts = try
        parse_args(args)
    catch e
        e isa UsageError || rethrow()
        return report_usage(e.msg)
    end
    if opts === nothing
        print(stdout, USAGE)
        return 0
    end
    return guarded(() -> run_threads(opts))
end

end # module HeatJulia

if abspath(PROGRAM_FILE) == @__FILE__
    exit(HeatJulia.main(ARGS))
end
