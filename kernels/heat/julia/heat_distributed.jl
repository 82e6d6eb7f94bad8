# heat_distributed.jl - the heat kernel on Distributed workers: row blocks with halo exchange.
#
#   julia --project=kernels/heat/julia kernels/heat/julia/heat_distributed.jl \
#       --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE] \
#       [--launcher local:N | --launcher srun] [--worker-threads T] [--worker-exename FILE]
#
#   --launcher local:N    N workers on this machine (addprocs(N)); the default is local:1
#   --launcher srun       one worker per Slurm task of the current allocation (SrunManager.jl): run it
#                         inside sbatch/salloc; uses SLURM_NTASKS and SLURM_CPUS_PER_TASK
#   --worker-threads T    threads per worker (julia --threads=T on each worker); default
#                         SLURM_CPUS_PER_TASK for srun, else 1
#   --worker-exename FILE the julia executable (or a wrapper script) the workers run; default this
#                         process's julia
#
# Workers get the project and their threads through exeflags: --project=<this project> --threads=T
# --startup-file=no. Each worker loads this file (and heat.jl) from the same path, so the repository
# must be at the same path on every node (a shared filesystem, or the same bind mount).
#
# Decomposition: the ny-2 interior rows are split into P contiguous blocks, one per worker, as evenly as
# possible (the first (ny-2) mod P blocks get one row more). A worker holds its rows plus one halo row
# above and below (the global boundary rows for the first and last block). Each sweep runs
# HeatJulia.sweep! (the threaded kernel of heat.jl) over the worker's rows; then each worker sends its
# first and last computed rows to its neighbours and receives its two halo rows from them.
#
# Halo exchange: one RemoteChannel per direction and neighbour pair, HOSTED ON THE RECEIVER, so a take!
# is local and a put! is one remote call carrying one row (nx Float64s, serialized over Distributed's
# TCP connection between the two workers). Channels hold 2 rows: a worker can run at most one sweep
# ahead of its neighbour, so a put! never waits for space. Cost per sweep and worker: two round trips of
# one row each (typically tens to a few hundred microseconds on a cluster network), plus serialization;
# this is what the distributed timing includes on top of the compute. Correctness first: there is no
# overlap of communication with the interior update.
#
# Timing: setup (sending the blocks), a warm-up (JIT compilation of the sweep and the exchange on every
# worker) and the gather of the result are outside the timed region; wall_s is the master's clock around
# "every worker runs all sweeps", so it includes the halo exchanges and one remote call round trip.
#
# Results: the master gathers the blocks and the per-row residual sums and adds them up in row order,
# so the field, residual and checksum are bitwise identical to heat.jl and heat.c for any number of
# workers and threads. metrics.json: kernel "heat-julia-distributed", impl "julia", processes = workers,
# threads = threads per worker.

include(joinpath(@__DIR__, "heat.jl"))
include(joinpath(@__DIR__, "SrunManager.jl"))

module HeatDistributed

using Distributed
import ..HeatJulia
import ..SrunManagers

const SCRIPT = @__FILE__

const USAGE = """
usage: heat_distributed.jl --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]
                           [--launcher local:N | --launcher srun] [--worker-threads T]
                           [--worker-exename FILE]
  --in FILE              initial field (HEAT binary file)
  --steps S              Jacobi sweeps to run (default 0: write the initial field)
  --alpha A              diffusion number kappa*dt/dx^2, 0 < A <= 0.25 (default 0.25)
  --out FILE             final field (HEAT binary file)
  --metrics FILE         metrics as JSON (one line)
  --launcher L           local:N (N local workers, default local:1) or srun (one worker per task of
                         the current Slurm allocation)
  --worker-threads T     threads per worker (default: SLURM_CPUS_PER_TASK with srun, else 1)
  --worker-exename FILE  julia executable for the workers (default: this process's julia)
"""

# ----------------------------------------------------------------------------------------------------
# Worker side: one block per worker, kept in BLOCK between the master's remote calls.

make_halo_channel() = Channel{Vector{Float64}}(2)

mutable struct Block
    a::Matrix{Float64}                      # nx x (m+2): columns 1 and m+2 are the halo rows
    b::Matrix{Float64}
    rowres::Vector{Float64}                 # per-row residual sums of the last sweep (index = column)
    alpha::Float64
    from_prev::Union{Nothing,RemoteChannel} # hosted here: rows from the previous block -> column 1
    from_next::Union{Nothing,RemoteChannel} # hosted here: rows from the next block -> column m+2
    to_prev::Union{Nothing,RemoteChannel}   # hosted on the previous block's worker
    to_next::Union{Nothing,RemoteChannel}   # hosted on the next block's worker
end

const BLOCK = Ref{Union{Nothing,Block}}(nothing)

"Stores this worker's block (rows with halos); returns the number of default threads here."
function setup_block!(rows::Matrix{Float64}, alpha::Float64, from_prev, from_next, to_prev, to_next)
    nx, mc = size(rows)
    a = HeatJulia.alloc_field(nx, mc)       # first touch by the threads that will update the rows
    copyto!(a, rows)
    b = HeatJulia.alloc_field(nx, mc)
    copyto!(b, a)                           # halo/boundary rows present in both buffers
    BLOCK[] = Block(a, b, zeros(mc), alpha, from_prev, from_next, to_prev, to_next)
    return Threads.nthreads(:default)
end

"Sends the first and last computed rows of `b` to the neighbours and receives `b`'s halo rows."
function exchange_halos!(b::Matrix{Float64}, blk::Block)
    m = size(b, 2) - 2
    blk.to_next === nothing || put!(blk.to_next, b[:, m+1])
    blk.to_prev === nothing || put!(blk.to_prev, b[:, 2])
    blk.from_prev === nothing || copyto!(view(b, :, 1), take!(blk.from_prev))
    blk.from_next === nothing || copyto!(view(b, :, m + 2), take!(blk.from_next))
    return nothing
end

"Compiles the sweep and the exchange (one exchange of a scratch copy: every worker does one)."
function warmup_block!()
    blk = BLOCK[]::Block
    HeatJulia.warmup()
    exchange_halos!(copy(blk.a), blk)
    return nothing
end

"Runs all sweeps on this worker's block; the result ends in BLOCK[].a."
function run_block!(steps::Int)
    blk = BLOCK[]::Block
    a, b = blk.a, blk.b
    m = size(a, 2) - 2
    for s in 1:steps
        HeatJulia.sweep!(b, a, 2, m + 1, blk.alpha, blk.rowres, s == steps)
        exchange_halos!(b, blk)
        a, b = b, a
    end
    blk.a, blk.b = a, b
    return nothing
end

"The computed rows and their residual sums, for the master's gather; frees the block."
function fetch_block!()
    blk = BLOCK[]::Block
    m = size(blk.a, 2) - 2
    out = (blk.a[:, 2:m+1], blk.rowres[2:m+1])
    BLOCK[] = nothing
    return out
end

# ----------------------------------------------------------------------------------------------------
# Master side

"Rows per block: as even as possible, the first (total mod p) blocks one row more."
function block_rows(total::Int, p::Int)
    base, extra = divrem(total, p)
    return [base + (k <= extra ? 1 : 0) for k in 1:p]
end

struct Launch
    kind::Symbol             # :local or :srun
    nlocal::Int
    threads::Int
    exename::String
end

function parse_launch(ext::Dict{String,String})
    # hpcflow's Julia adapter says how to start workers in HPCFLOW_JULIA_LAUNCHER (local:N in one
    # container, srun inside a Slurm allocation); --launcher on the command line wins.
    l = get(ext, "--launcher", get(ENV, "HPCFLOW_JULIA_LAUNCHER", "local:1"))
    kind, nlocal = if l == "srun"
        (:srun, 0)
    elseif startswith(l, "local:")
        n = tryparse(Int, l[7:end])
        (n === nothing || n < 1) && throw(HeatJulia.UsageError("--launcher local:N wants N >= 1, got '$l'"))
        (:local, n)
    else
        throw(HeatJulia.UsageError("--launcher wants local:N or srun, got '$l'"))
    end
    default_threads = kind == :srun ? max(1, something(tryparse(Int, get(ENV, "SLURM_CPUS_PER_TASK", "")), 1)) : 1
    tv = get(ext, "--worker-threads", string(default_threads))
    t = tryparse(Int, tv)
    (t === nothing || t < 1) && throw(HeatJulia.UsageError("--worker-threads wants an integer >= 1, got '$tv'"))
    exename = get(ext, "--worker-exename", joinpath(Sys.BINDIR, Base.julia_exename()))
    return Launch(kind, nlocal, t, exename)
end

"Starts the workers and loads this file on them; returns (pids, manager or nothing)."
function start_workers(l::Launch)
    proj = Base.active_project()
    proj === nothing && throw(HeatJulia.HeatError("no active project: run julia with --project=kernels/heat/julia"))
    flags = `--project=$(dirname(proj)) --threads=$(l.threads) --startup-file=no`
    manager = nothing
    pids = try
        if l.kind == :srun
            manager = SrunManagers.SrunManager()
            addprocs(manager; exename = l.exename, exeflags = flags)
        else
            addprocs(l.nlocal; exename = l.exename, exeflags = flags)
        end
    catch e
        manager === nothing || manager.process === nothing || kill(manager.process)
        throw(HeatJulia.HeatError("could not start the workers: $(sprint(showerror, e))"))
    end
    try
        @everywhere pids include($SCRIPT)
    catch e
        stop_workers(pids, manager)
        throw(HeatJulia.HeatError("could not load $SCRIPT on the workers: $(sprint(showerror, e))"))
    end
    return pids, manager
end

function stop_workers(pids, manager)
    try
        rmprocs(pids; waitfor = 30)
    catch
    end
    manager === nothing || SrunManagers.wait_for_srun(manager)
    return nothing
end

function run_distributed(opts::HeatJulia.Options, l::Launch)
    f = HeatJulia.read_field(opts.input)     # input errors before anything is started
    pids, manager = start_workers(l)
    try
        return solve_distributed(opts, f, pids)
    finally
        stop_workers(pids, manager)
    end
end

function solve_distributed(opts::HeatJulia.Options, f::HeatJulia.Field, pids::Vector{Int})
    nx, ny = f.nx, f.ny
    p = length(pids)
    p <= ny - 2 || throw(HeatJulia.HeatError("$p workers for $(ny - 2) interior rows: use at most $(ny - 2) workers"))
    counts = block_rows(ny - 2, p)
    first_row = cumsum([2; counts[1:end-1]])     # first interior column of each block (1-based)

    # Halo channels, each hosted on the worker that takes from it.
    from_prev = Union{Nothing,RemoteChannel}[k > 1 ? RemoteChannel(make_halo_channel, pids[k]) : nothing for k in 1:p]
    from_next = Union{Nothing,RemoteChannel}[k < p ? RemoteChannel(make_halo_channel, pids[k]) : nothing for k in 1:p]

    threads = zeros(Int, p)
    @sync for k in 1:p
        lo, hi = first_row[k], first_row[k] + counts[k] - 1
        rows = f.t[:, lo-1:hi+1]
        to_prev = k > 1 ? from_next[k-1] : nothing
        to_next = k < p ? from_prev[k+1] : nothing
        @async threads[k] = remotecall_fetch(setup_block!, pids[k], rows, opts.alpha,
                                             from_prev[k], from_next[k], to_prev, to_next)
    end
    @sync for k in 1:p
        @async remotecall_fetch(warmup_block!, pids[k])
    end

    t0 = time_ns()
    @sync for k in 1:p
        @async remotecall_fetch(run_block!, pids[k], opts.steps)
    end
    wall = (time_ns() - t0) / 1e9

    result = copy(f.t)                           # boundary rows as read
    rowres = zeros(ny)
    for k in 1:p
        block, block_res = remotecall_fetch(fetch_block!, pids[k])
        lo, hi = first_row[k], first_row[k] + counts[k] - 1
        result[:, lo:hi] = block
        rowres[lo:hi] = block_res
    end

    res = HeatJulia.residual(rowres)
    chk = HeatJulia.checksum(result)
    rate = HeatJulia.update_rate(nx, ny, opts.steps, wall)
    nthr = minimum(threads)
    HeatJulia.write_field(opts.output, nx, ny, f.dx, result)
    HeatJulia.write_metrics(opts.metrics,
                            HeatJulia.metrics_json("heat-julia-distributed", nx, ny, opts.steps, opts.alpha,
                                                   p, nthr, wall, rate, res, chk))
    println(HeatJulia.summary_line(nx, ny, opts.steps, opts.alpha, p, nthr, wall, rate, res, chk))
    return nothing
end

function main(args::Vector{String})
    opts, l = try
        o = HeatJulia.parse_args(args; extra = ("--launcher", "--worker-threads", "--worker-exename"))
        o === nothing ? (nothing, nothing) : (o, parse_launch(o.extra))
    catch e
        e isa HeatJulia.UsageError || rethrow()
        return HeatJulia.report_usage(e.msg, USAGE)
    end
    if opts === nothing
        print(stdout, USAGE)
        return 0
    end
    return HeatJulia.guarded(() -> run_distributed(opts, l))
end

end # module HeatDistributed

if abspath(PROGRAM_FILE) == @__FILE__
    exit(HeatDistributed.main(ARGS))
end
