# SrunManager.jl - a small Distributed ClusterManager that starts one Julia worker per Slurm task with
# `srun`, INSIDE the allocation that is already running (sbatch/salloc), using only the standard library.
#
# Modelled on SlurmClusterManager.jl (JuliaParallel/SlurmClusterManager.jl, src/slurmmanager.jl):
#
#   srun --ntasks=$SLURM_NTASKS [--cpus-per-task=C] --kill-on-bad-exit=1 --chdir=DIR [$HPCFLOW_TASK_WRAP] \
#        <exename> <exeflags> --worker
#
# is opened with a pipe on its stdin and stdout. The cluster cookie is written to srun's stdin, which
# srun forwards to every task (so it never appears on a command line, in ps or in the job record);
# `julia --worker` reads it, listens on a free port and prints one line `julia_worker:PORT#HOST`;
# the manager reads one such line per task from srun's stdout and hands each (host, port) to
# Distributed, which connects to the worker. Later output of the workers is copied to this
# process's stdout.
#
# Notes:
#   - srun starts a job step of the existing allocation; it never asks Slurm for new resources.
#   - Since Slurm 22.05 srun does not inherit --cpus-per-task from sbatch/salloc, so it is passed
#     explicitly (from SLURM_CPUS_PER_TASK) when known.
#   - If this (master) process itself runs inside a job step that holds the allocation's CPUs (e.g. it
#     was started with `srun -n1 julia ...`), the workers' step waits for those CPUs: start the master
#     from the batch script instead, or let the steps share CPUs (SLURM_OVERLAP=1 / srun --overlap).
#   - The worker environment is srun's (the whole environment by default, --export=ALL) plus
#     addprocs' `env` pairs; the project comes from the `--project=...` in `exeflags`.
#   - JULIA_WORKER_TIMEOUT (seconds, default 60) bounds both the workers' wait for the master and,
#     here, the wait for all `julia_worker:` lines.

module SrunManagers

using Distributed

export SrunManager, wait_for_srun

mutable struct SrunManager <: ClusterManager
    ntasks::Int
    cpus_per_task::Int                   # 0: do not pass --cpus-per-task
    srun::Vector{String}                 # the launcher command, e.g. ["srun"]
    launch_timeout::Float64
    process::Union{Nothing,Base.Process}
    output::Union{Nothing,Task}
end

function env_int(name::AbstractString, default::Int)
    v = get(ENV, name, "")
    isempty(v) && return default
    # SLURM_NTASKS is a plain integer; SLURM_CPUS_PER_TASK too (per-node lists like "4(x2)" are for
    # SLURM_TASKS_PER_NODE): anything else is an error rather than a guess.
    n = tryparse(Int, v)
    n === nothing && error("$name=$v is not an integer")
    return n
end

"""
    SrunManager(; ntasks, cpus_per_task, srun=["srun"], launch_timeout)

Defaults come from the allocation: `ntasks = SLURM_NTASKS`, `cpus_per_task = SLURM_CPUS_PER_TASK`
(0 when unset), `launch_timeout = JULIA_WORKER_TIMEOUT` (60 s when unset).
"""
function SrunManager(; ntasks::Integer = env_int("SLURM_NTASKS", 0),
                     cpus_per_task::Integer = env_int("SLURM_CPUS_PER_TASK", 0),
                     srun::Vector{String} = ["srun"],
                     launch_timeout::Real = parse(Float64, get(ENV, "JULIA_WORKER_TIMEOUT", "60")))
    (haskey(ENV, "SLURM_JOB_ID") || haskey(ENV, "SLURM_JOBID")) ||
        error("the srun launcher needs a Slurm allocation (SLURM_JOB_ID is not set): run inside sbatch/salloc")
    ntasks > 0 || error("the srun launcher needs the number of tasks (SLURM_NTASKS is not set)")
    cpus_per_task >= 0 || error("cpus_per_task must be >= 0")
    return SrunManager(Int(ntasks), Int(cpus_per_task), srun, Float64(launch_timeout), nothing, nothing)
end

function Distributed.launch(m::SrunManager, params::Dict, launched::Array, c::Condition)
    exename = params[:exename]
    exeflags = params[:exeflags]
    dir = params[:dir]
    env = Dict{String,String}(params[:env])
    opts = ["--ntasks=$(m.ntasks)", "--kill-on-bad-exit=1", "--chdir=$dir"]
    m.cpus_per_task > 0 && push!(opts, "--cpus-per-task=$(m.cpus_per_task)")
    # Under hpcflow's Slurm executor every worker runs in the stage's container too: the words in
    # HPCFLOW_TASK_WRAP (the container runtime's srun options and a wrapper script) go between
    # srun's options and the program.
    wrap = split(get(ENV, "HPCFLOW_TASK_WRAP", ""))
    cmd = `$(m.srun) $opts $wrap $exename $exeflags --worker`
    isempty(env) || (cmd = addenv(cmd, env))

    proc = open(cmd; read = true, write = true)
    m.process = proc
    # The cookie on stdin: srun forwards its stdin to all tasks (its default), each worker reads a line.
    write(proc, cluster_cookie(), "\n")
    flush(proc)

    reader = @async begin
        started = 0
        while started < m.ntasks
            eof(proc) && error("srun ended after $started of $(m.ntasks) workers had started")
            line = readline(proc)
            mt = match(r"julia_worker:(\d+)#(\S+)", line)
            if mt === nothing
                println(stdout, line)            # srun or worker chatter before the handshake
                continue
            end
            config = WorkerConfig()
            config.port = parse(Int, mt.captures[1])
            config.host = String(mt.captures[2])
            push!(launched, config)
            notify(c)
            started += 1
        end
    end
    if timedwait(() -> istaskdone(reader), m.launch_timeout) !== :ok
        kill(proc)
        error("srun did not start $(m.ntasks) workers within $(m.launch_timeout) s (JULIA_WORKER_TIMEOUT)")
    end
    fetch(reader)                                # rethrows a failure of the reader

    # Copy whatever the workers print later (they have no other stdout once started this way).
    m.output = @async begin
        try
            while !eof(proc)
                println(stdout, readline(proc))
            end
        catch
        end
    end
    return nothing
end

# Distributed calls manage(...) for :register, :interrupt, :finalize and :deregister; the workers are
# Slurm's tasks, so there is nothing to do here (removing a worker makes it exit, which ends its task).
Distributed.manage(m::SrunManager, id::Integer, config::WorkerConfig, op::Symbol) = nothing

"""
    wait_for_srun(m; timeout=30)

After `rmprocs`, waits for the srun step to end (all workers exited), so Slurm records the step as
completed before the master exits; kills srun if it is still running after `timeout` seconds.
"""
function wait_for_srun(m::SrunManager; timeout::Real = 30)
    p = m.process
    p === nothing && return nothing
    if timedwait(() -> process_exited(p), Float64(timeout)) !== :ok
        kill(p)
    end
    return nothing
end

end # module SrunManagers
