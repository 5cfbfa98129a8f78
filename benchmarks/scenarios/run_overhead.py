"""``run_overhead``: what one reconciliation run costs beyond its API work, launched as the daemon launches runs.

A Dagster instance on Postgres (a scratch database), a code server (``dagster api grpc``, as the daemon
starts one) and Dagster's default run launcher: each run is created from the code server's job and
launched by the instance, which starts it in a new run-worker process, exactly the path a queued run
takes once the daemon dequeues it (``instance.launch_run``; the queue's own polling is left out). The account is tiny (2
reservations, a few calls) and the stand-in is time-scaled 100x, so nearly all of a run is overhead.

Per run: wall seconds from submission to the run's end, the API span inside it (first to last call the
stand-in served), and CPU seconds of everything the run cost outside Postgres: the code server and every
process it started and reaped (the run worker and, with the multiprocess executor, one process per step;
read from ``/proc``) plus this process's work creating and launching the run. Both executors run the same
job: ``in_process`` (shipped) and ``multiprocess`` (Dagster's default, as runs executed before). Runs per
hour one 2-core machine can launch = 2 x 3600 / CPU seconds per run (the CPU bound; the IP budget binds
far earlier: 129,600 calls a day / about 45 calls per account is 120 account runs an hour).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy.engine import make_url

from benchmarks.report import ScenarioResult, Target
from benchmarks.scenarios.options import BenchOptions
from benchmarks.stand_in import StandInProcess
from benchmarks.wiring import fresh_database, server_url
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.defs.pools import ensure_api_pool_limit
from hostaway_pipeline.defs.resources import WarehouseResource
from hostaway_pipeline.defs.run_tags import account_run_tags

ACCOUNT_ID = 60001
TIME_SCALE = 100.0  # API work stays trivial: 15 calls per 0.1 s
RUNS = {"in_process": 5, "multiprocess": 3}  # measured runs per executor, after one warm-up run each
LOCATION = "run_overhead"
CORES = 2
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_INSTANCE_YAML = """\
storage:
  postgres:
    postgres_url: {url}
concurrency:
  pools:
    granularity: op
telemetry:
  enabled: false
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _process_tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and of every child it has reaped (``/proc/PID/stat`` fields 14-17)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


@contextmanager
def _code_server(attribute: str, environment: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``dagster api grpc`` serving ``benchmarks.executor_variants:<attribute>``, as the daemon starts one."""
    from dagster._grpc.client import DagsterGrpcClient

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "--module-name", "benchmarks.executor_variants",
         "--attribute", attribute, "--host", "127.0.0.1", "--port", str(port), "--location-name", LOCATION],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 120
        while True:
            try:
                client.ping("")
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the code server for {attribute} did not start") from None
                time.sleep(0.2)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _create_and_launch(instance: dg.DagsterInstance, workspace: Any) -> str:
    """What the queue daemon's dequeue leads to: a run of the job for one partition, launched by the instance."""
    location = workspace.get_code_location(LOCATION)
    repository = next(iter(location.get_repositories().values()))
    remote_job = repository.get_full_job(reconcile_account_job.name)
    plan = location.get_execution_plan(remote_job, {}, step_keys_to_execute=None, known_state=None,
                                       instance=instance).execution_plan_snapshot
    tags = {**remote_job.tags, "dagster/partition": partition_key(ACCOUNT_ID),
            **account_run_tags(ACCOUNT_ID, "benchmark")}
    run = instance.create_run(
        job_name=remote_job.name, run_id=None, run_config={}, resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute, op_selection=None, status=None, root_run_id=None,
        parent_run_id=None, tags=tags, job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan,
        parent_job_snapshot=remote_job.parent_job_snapshot, remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(), asset_selection=None, asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )
    instance.launch_run(run.run_id, workspace)  # what the queue daemon calls for a run it dequeues
    return run.run_id


def _measure(executor: str, instance: dg.DagsterInstance, environment: dict[str, str],
             stand_in: StandInProcess) -> dict[str, Any]:
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import GrpcServerTarget

    runs: list[dict[str, float]] = []
    with _code_server(f"{executor}_defs", environment) as (server, port), \
            WorkspaceProcessContext(instance, GrpcServerTarget(host="127.0.0.1", port=port, socket=None,
                                                               location_name=LOCATION)) as context:
        for index in range(RUNS[executor] + 1):  # the first run warms up (token, imports, caches)
            calls_before = len(stand_in.calls())
            server_cpu_before, own_cpu_before = _process_tree_cpu_seconds(server.pid), time.process_time()
            began = time.monotonic()
            run_id = _create_and_launch(instance, context.create_request_context())
            own_cpu = time.process_time() - own_cpu_before
            while not (run := instance.get_run_by_id(run_id)) or not run.is_finished:
                if time.monotonic() - began > 600:
                    raise RuntimeError(f"{executor} run {run_id} did not finish in 600 s")
                time.sleep(0.02)
            wall = time.monotonic() - began
            if run.status != dg.DagsterRunStatus.SUCCESS:
                raise RuntimeError(f"{executor} run {run_id} ended {run.status.value}")
            time.sleep(1.5)  # the code server reaps its finished run worker every 0.5 s
            server_cpu = _process_tree_cpu_seconds(server.pid) - server_cpu_before
            calls = stand_in.calls()[calls_before:]
            api_span = (max(c["time"] for c in calls) - min(c["time"] for c in calls)) if calls else 0.0
            if index:
                runs.append({"wall": wall, "cpu": server_cpu + own_cpu, "api_span": api_span,
                             "calls": float(len(calls))})
    return {
        "runs": len(runs),
        "cpu_seconds_per_run": round(statistics.median(r["cpu"] for r in runs), 2),
        "wall_seconds_per_run": round(statistics.median(r["wall"] for r in runs), 2),
        "api_span_seconds_per_run": round(statistics.median(r["api_span"] for r in runs), 2),
        "calls_per_run": statistics.median(r["calls"] for r in runs),
    }


@contextmanager
def _instance(database_url: str) -> Iterator[tuple[dg.DagsterInstance, str]]:
    home = tempfile.mkdtemp(prefix="run_overhead_dagster_home_")
    url = make_url(database_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    Path(home, "dagster.yaml").write_text(_INSTANCE_YAML.format(url=url))
    with dg.DagsterInstance.from_config(home) as instance:
        yield instance, home


def run(options: BenchOptions) -> ScenarioResult:
    with fresh_database(server_url(options.database_server_url)) as database_url, \
            StandInProcess({ACCOUNT_ID: 2}, seed=options.seed, time_scale=TIME_SCALE) as stand_in, \
            _instance(database_url) as (instance, home):
        warehouse = WarehouseResource(database_url=database_url)
        warehouse.accounts.add(ACCOUNT_ID, stand_in.client_secret(ACCOUNT_ID), name="benchmark",
                               egress_pool="benchmark-run-overhead")
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT_ID)])
        ensure_api_pool_limit(instance, 4)
        window = 10.0 / TIME_SCALE
        environment = {
            **os.environ, "DAGSTER_HOME": home, "HOSTAWAY_DATABASE_URL": database_url,
            "HOSTAWAY_DAGSTER_DATABASE_URL": database_url, "HOSTAWAY_API_BASE_URL": stand_in.base_url,
            "HOSTAWAY_RATE_LIMIT_PER_IP": f"15/{window:g}s", "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT": f"20/{window:g}s",
            "HOSTAWAY_RATE_LIMIT_GUARD": f"{0.1 / TIME_SCALE:g}", "HOSTAWAY_EGRESS_ID": "benchmark-run-overhead",
        }
        measured = {executor: _measure(executor, instance, environment, stand_in) for executor in RUNS}

    result = ScenarioResult(
        "run_overhead", f"reconciliation runs of a 2-reservation account launched through a Postgres instance, a "
                        f"code server and the default run launcher; stand-in at {TIME_SCALE:g}x; median of "
                        f"{RUNS['in_process']} (in-process) and {RUNS['multiprocess']} (multiprocess) runs",
    )
    after, before = measured["in_process"], measured["multiprocess"]
    result.figures = {
        "cpu_seconds_per_run": after["cpu_seconds_per_run"],
        "wall_seconds_per_run": after["wall_seconds_per_run"],
        "wall_overhead_seconds_per_run": round(after["wall_seconds_per_run"] - after["api_span_seconds_per_run"], 2),
        "runs_per_hour_on_2_cores": int(CORES * 3600 / after["cpu_seconds_per_run"]),
        "multiprocess_cpu_seconds_per_run": before["cpu_seconds_per_run"],
        "multiprocess_wall_seconds_per_run": before["wall_seconds_per_run"],
        "multiprocess_runs_per_hour_on_2_cores": int(CORES * 3600 / before["cpu_seconds_per_run"]),
        "calls_per_run": after["calls_per_run"],
    }
    # 2,000 accounts a day spread over the day is about 84 runs an hour; keep 3x headroom for retries,
    # backfills and a busy machine.
    result.targets = [Target("runs_per_hour_on_2_cores", ">=", 250)]
    result.details = measured
    return result
