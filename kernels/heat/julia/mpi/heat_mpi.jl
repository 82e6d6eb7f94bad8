# heat_mpi.jl - the heat kernel on MPI ranks (MPI.jl over the system MPI): row blocks, halo exchange
# with MPI.Sendrecv!, Julia threads inside each rank.
#
#   srun --mpi=pmix julia --project=kernels/heat/julia/mpi --threads=T kernels/heat/julia/mpi/heat_mpi.jl \
#       --in FILE --out FILE [--steps S] [--alpha A] [--metrics FILE]
#   mpiexec -n P julia --project=kernels/heat/julia/mpi --threads=T kernels/heat/julia/mpi/heat_mpi.jl ...
#
# Environment: this directory's Project.toml (MPI, MPIPreferences). Its Manifest.toml must be resolved
# once where the General registry is reachable and committed, and MPI.jl pointed at the system MPI
# (writes LocalPreferences.toml next to Project.toml):
#   julia --project=kernels/heat/julia/mpi -e 'using Pkg; Pkg.resolve(); Pkg.instantiate()'
#   julia --project=kernels/heat/julia/mpi -e 'using MPIPreferences; MPIPreferences.use_system_binary()'
# See ../README.md.
#
# Decomposition as in heat_distributed.jl: the ny-2 interior rows in P contiguous blocks (the first
# (ny-2) mod P ranks get one row more), each with one halo row on either side. Rank 0 reads the field,
# scatters the interior rows (MPI.Scatterv!) and broadcasts the two boundary rows; after every sweep
# each rank exchanges its first and last computed rows with its neighbours (two MPI.Sendrecv!, the
# outermost ranks talk to MPI.PROC_NULL); at the end rank 0 gathers the rows and the per-row residual
# sums (MPI.Gatherv!) and writes the outputs.
#
# Determinism: the residual is NOT an MPI.Allreduce(+) of per-rank partial sums (the MPI library may
# combine them in any order, which changes the last bits); the per-row sums are gathered and added on
# rank 0 in row order, like heat.c, so field, residual and checksum are bitwise identical to heat.c
# and heat.jl for any number of ranks and threads. MPI.Allreduce(max) gives the slowest rank's time.
#
# Timing: MPI.Barrier, then MPI.Wtime around the sweeps and halo exchanges; wall_s is the maximum over
# ranks. Reading, scattering, a warm-up (JIT compilation and one exchange) and gathering are not timed.
# metrics.json: kernel "heat-julia-mpi", impl "julia", processes = ranks, threads = threads per rank.
#
# Exit status as for the other kernels: 2 for bad usage (every rank; rank 0 prints), 1 for an I/O or
# data error (reported by rank 0; every rank exits 1 when the input cannot be read).

include(joinpath(@__DIR__, "..", "heat.jl"))

module HeatMPI

using MPI
import ..HeatJulia

"Sends column m+1 of `b` to `next` and column 2 to `prev`; fills columns 1 and m+2 from them."
function exchange!(b::Matrix{Float64}, comm, prev::Integer, next::Integer,
                   sbuf::Vector{Float64}, rbuf::Vector{Float64})
    nx = size(b, 1)
    m = size(b, 2) - 2
    # upward: my last computed row to the next rank, the previous rank's last row into my column 1
    copyto!(sbuf, 1, b, m * nx + 1, nx)
    MPI.Sendrecv!(sbuf, rbuf, comm; dest = next, sendtag = 1, source = prev, recvtag = 1)
    prev == MPI.PROC_NULL || copyto!(b, 1, rbuf, 1, nx)
    # downward: my first computed row to the previous rank, the next rank's first row into column m+2
    copyto!(sbuf, 1, b, nx + 1, nx)
    MPI.Sendrecv!(sbuf, rbuf, comm; dest = prev, sendtag = 2, source = next, recvtag = 2)
    next == MPI.PROC_NULL || copyto!(b, (m + 1) * nx + 1, rbuf, 1, nx)
    return nothing
end

function run_mpi(opts::HeatJulia.Options, comm)
    rank = MPI.Comm_rank(comm)
    nranks = MPI.Comm_size(comm)
    root = 0

    # Rank 0 reads; everyone learns whether that worked and the grid size.
    f = nothing
    failure = ""
    if rank == root
        try
            f = HeatJulia.read_field(opts.input)
        catch e
            e isa HeatJulia.HeatError || rethrow()
            failure = e.msg
        end
    end
    hdr = rank == root && f !== nothing ? Int[1, f.nx, f.ny] : Int[0, 0, 0]
    MPI.Bcast!(hdr, comm; root = root)
    if hdr[1] == 0
        rank == root && throw(HeatJulia.HeatError(failure))
        return 1
    end
    nx, ny = hdr[2], hdr[3]
    if nranks > ny - 2
        rank == root && throw(HeatJulia.HeatError("$nranks ranks for $(ny - 2) interior rows: use at most $(ny - 2) ranks"))
        return 1
    end

    # Block of this rank: m rows, global interior columns lo:lo+m-1 (1-based columns of the field).
    base, extra = divrem(ny - 2, nranks)
    counts = [base + (r < extra ? 1 : 0) for r in 0:nranks-1]
    m = counts[rank+1]
    prev = rank > 0 ? rank - 1 : MPI.PROC_NULL
    next = rank < nranks - 1 ? rank + 1 : MPI.PROC_NULL

    # Scatter the interior rows, broadcast the two boundary rows, then fill the halos by one exchange.
    recv = Vector{Float64}(undef, nx * m)
    if rank == root
        interior = vec(f.t[:, 2:ny-1])
        MPI.Scatterv!(MPI.VBuffer(interior, nx .* counts), recv, comm; root = root)
    else
        MPI.Scatterv!(nothing, recv, comm; root = root)
    end
    edges = rank == root ? vcat(f.t[:, 1], f.t[:, ny]) : Vector{Float64}(undef, 2 * nx)
    MPI.Bcast!(edges, comm; root = root)

    a = HeatJulia.alloc_field(nx, m + 2)
    copyto!(a, nx + 1, recv, 1, nx * m)
    rank == 0 && copyto!(a, 1, edges, 1, nx)
    rank == nranks - 1 && copyto!(a, (m + 1) * nx + 1, edges, nx + 1, nx)
    sbuf = Vector{Float64}(undef, nx)
    rbuf = Vector{Float64}(undef, nx)
    exchange!(a, comm, prev, next, sbuf, rbuf)
    b = HeatJulia.alloc_field(nx, m + 2)
    copyto!(b, a)
    rowres = zeros(m + 2)
    threads = Threads.nthreads(:default)

    # Warm-up: compile the sweep and the exchange (on a scratch copy) before the clock starts.
    HeatJulia.warmup()
    exchange!(copy(a), comm, prev, next, sbuf, rbuf)

    MPI.Barrier(comm)
    t0 = MPI.Wtime()
    for s in 1:opts.steps
        HeatJulia.sweep!(b, a, 2, m + 1, opts.alpha, rowres, s == opts.steps)
        exchange!(b, comm, prev, next, sbuf, rbuf)
        a, b = b, a
    end
    wall = MPI.Allreduce(MPI.Wtime() - t0, max, comm)
    nthr = MPI.Allreduce(threads, min, comm)

    # Gather the computed rows and their residual sums on rank 0.
    rows = vec(a[:, 2:m+1])
    res_rows = rowres[2:m+1]
    if rank == root
        all_rows = Vector{Float64}(undef, nx * (ny - 2))
        all_res = Vector{Float64}(undef, ny - 2)
        MPI.Gatherv!(rows, MPI.VBuffer(all_rows, nx .* counts), comm; root = root)
        MPI.Gatherv!(res_rows, MPI.VBuffer(all_res, counts), comm; root = root)
    else
        MPI.Gatherv!(rows, nothing, comm; root = root)
        MPI.Gatherv!(res_rows, nothing, comm; root = root)
    end
    rank == root || return 0

    result = copy(f.t)                            # boundary rows as read
    copyto!(result, nx + 1, all_rows, 1, nx * (ny - 2))
    rowres_all = zeros(ny)
    rowres_all[2:ny-1] = all_res
    res = HeatJulia.residual(rowres_all)
    chk = HeatJulia.checksum(result)
    rate = HeatJulia.update_rate(nx, ny, opts.steps, wall)
    HeatJulia.write_field(opts.output, nx, ny, f.dx, result)
    HeatJulia.write_metrics(opts.metrics,
                            HeatJulia.metrics_json("heat-julia-mpi", nx, ny, opts.steps, opts.alpha,
                                                   nranks, nthr, wall, rate, res, chk))
    println(HeatJulia.summary_line(nx, ny, opts.steps, opts.alpha, nranks, nthr, wall, rate, res, chk))
    return 0
end

function main(args::Vector{String})
    MPI.Init()
    comm = MPI.COMM_WORLD
    rank = MPI.Comm_rank(comm)
    usage = replace(HeatJulia.USAGE, "heat.jl" => "heat_mpi.jl")
    opts = try
        HeatJulia.parse_args(args)
    catch e
        e isa HeatJulia.UsageError || rethrow()
        rank == 0 && HeatJulia.report_usage(e.msg, usage)
        return 2
    end
    if opts === nothing
        rank == 0 && print(stdout, usage)
        return 0
    end
    status = 0
    try
        status = run_mpi(opts, comm)
    catch e
        e isa HeatJulia.HeatError || rethrow()
        println(stderr, "heat: error: ", e.msg)
        status = 1
    end
    return status
end

end # module HeatMPI

if abspath(PROGRAM_FILE) == @__FILE__
    exit(HeatMPI.main(ARGS))   # MPI.jl finalizes MPI in an atexit hook
end
