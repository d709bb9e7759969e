"""How long an operator waits, on the samples, against real services: a run of the `samples`
deployment (from `prefect deployment run` to Completed, through a worker), `corpusflow run`
against a running Prefect server, and `corpusflow run` in Prefect's ephemeral mode (which
starts a temporary server each time), all in one bench run against the same services.

    .venv/bin/python -m bench.deploy              # starts its own SeaweedFS, Label Studio, Prefect
    .venv/bin/python -m bench.deploy --repeat 2

Each mode runs twice per repeat: "first" on a fresh store prefix and a fresh Label Studio
project (every stage does its work: 5 documents cleaned, annotated, pushed, a release
published), then "again" on the same store (incremental: nothing changes, nothing published).
For deployment runs the flow run's own duration (Prefect's start to end time) is shown too; the
rest is the worker picking the run up and starting a process for it.

Measured 2026-12-01 on the loaded 2-core machine (load average 5-14, six helpers at work),
--repeat 2, medians in seconds, first run / again: deployment run 42.1 / 40.0 (the flow run
itself 17.8 / 10.2: the rest is the worker's poll and the new process importing Prefect, spaCy
and the flow); `corpusflow run` against the running server 28.1 / 19.7; in ephemeral mode
62.3 / 39.9 (its temporary server's start and stop). Server over ephemeral: 0.45 first run,
0.49 again. Setup: `prefect server start` 26.2, pool + Secret blocks 9.2, `prefect deploy
--all` 9.4, worker to first heartbeat 9.7.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from services.labelstudio import LabelStudioService
from services.prefect_server import PrefectServer
from services.seaweedfs import SeaweedService, free_port

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "corpusflow-bench"
CLI = [sys.executable, "-m", "flows.cli"]


def _prefect_free_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def time_deployment_run(server: PrefectServer, store: str, project: str) -> tuple[float, float]:
    """Seconds from `prefect deployment run` to Completed, and the flow run's own duration."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    started = time.perf_counter()
    done = subprocess.run(
        [
            str(server.prefect),
            "deployment",
            "run",
            "corpusflow-run/samples",
            "--param",
            f"store={json.dumps(store)}",
            "--job-variable",
            f"env={json.dumps({'CORPUSFLOW_LS_PROJECT': project})}",
            "--watch",
            "--watch-interval",
            "1",
        ],
        env=server.env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0 or "Completed" not in done.stdout:
        raise RuntimeError(f"deployment run failed:\n{(done.stdout + done.stderr)[-3000:]}")
    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as c:
        (run,) = c.read_flow_runs(limit=1, sort="EXPECTED_START_TIME_DESC")  # type: ignore[arg-type]
        assert run.state is not None and run.state.is_completed(), run.state
        own = (
            (run.end_time - run.start_time).total_seconds()
            if run.end_time and run.start_time
            else float("nan")
        )
    return wall, own


def time_cli_run(env: dict[str, str], store: str, project: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, "run", "--store", store],
        env={**env, "CORPUSFLOW_LS_PROJECT": project},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"corpusflow run failed:\n{done.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode (each twice)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp_:
        tmp = Path(tmp_)
        s3 = SeaweedService.on_free_ports(tmp / "seaweedfs")
        ls = LabelStudioService(data_dir=tmp / "labelstudio", port=free_port())
        server = PrefectServer(home=tmp / "prefect", port=free_port())
        try:
            t = time.perf_counter()
            s3.start()
            s3.ensure_bucket(BUCKET)
            print(f"SeaweedFS up in {time.perf_counter() - t:.1f} s", flush=True)
            t = time.perf_counter()
            ls.start(timeout=480)
            print(f"Label Studio up in {time.perf_counter() - t:.1f} s", flush=True)
            services = {
                "LABEL_STUDIO_URL": ls.url,
                "LABEL_STUDIO_API_KEY": ls.token,
                "AWS_ENDPOINT_URL": s3.endpoint_url,
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                "CORPUSFLOW_STORE": f"s3://{BUCKET}/default",
            }
            setup: dict[str, float] = {}
            t = time.perf_counter()
            server.start()
            setup["prefect server start"] = time.perf_counter() - t
            t = time.perf_counter()
            server.ensure_pool()
            server.save_secrets(
                "corpusflow",
                {
                    "label-studio-api-key": ls.token,
                    "aws-access-key-id": s3.access_key,
                    "aws-secret-access-key": s3.secret_key,
                },
            )
            setup["work pool + Secret blocks"] = time.perf_counter() - t
            t = time.perf_counter()
            server.deploy(services, cwd=ROOT)
            setup["prefect deploy --all (3 deployments)"] = time.perf_counter() - t
            t = time.perf_counter()
            server.start_worker({**services, "PREFECT_WORKER_QUERY_SECONDS": "2"})
            setup["worker start (first heartbeat)"] = time.perf_counter() - t
            for what, secs in setup.items():
                print(f"{what:<40} {secs:6.1f} s", flush=True)

            server_env = _prefect_free_env(
                {**services, "PREFECT_API_URL": server.api_url, "PREFECT_HOME": str(server.home)}
            )
            ephemeral_env = _prefect_free_env({**services, "PREFECT_HOME": str(tmp / "eph")})
            results: dict[str, dict[str, list[float]]] = {}

            def record(mode: str, phase: str, secs: float) -> None:
                results.setdefault(mode, {}).setdefault(phase, []).append(secs)
                print(f"  {mode:<34} {phase:<6} {secs:6.1f} s", flush=True)

            for _ in range(args.repeat):
                for mode in (
                    "deployment run",
                    "corpusflow run, server",
                    "corpusflow run, ephemeral",
                ):
                    store = f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}"
                    project = f"bench-{uuid.uuid4().hex[:6]}"
                    for phase in ("first", "again"):
                        if mode == "deployment run":
                            wall, own = time_deployment_run(server, store, project)
                            record(mode, phase, wall)
                            record("  (flow run's own duration)", phase, own)
                        else:
                            env = server_env if mode.endswith("server") else ephemeral_env
                            record(mode, phase, time_cli_run(env, store, project))
        finally:
            server.stop_all()
            ls.stop()
            s3.stop()

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):6.1f}" if values else "     -"

    print()
    print(f"samples (5 documents), median of {args.repeat} per cell, seconds")
    print(f"| {'mode':<34} | first run | again (incremental) |")
    print(f"|{'-' * 36}|-----------|---------------------|")
    for mode, phases in results.items():
        print(f"| {mode:<34} | {med(phases['first'])}    | {med(phases['again'])}              |")
    eph = statistics.median(results["corpusflow run, ephemeral"]["first"])
    srv = statistics.median(results["corpusflow run, server"]["first"])
    print(f"\ncorpusflow run on a running server / ephemeral (first run): {srv / eph:.2f}")
    eph2 = statistics.median(results["corpusflow run, ephemeral"]["again"])
    srv2 = statistics.median(results["corpusflow run, server"]["again"])
    print(f"corpusflow run on a running server / ephemeral (again):     {srv2 / eph2:.2f}")


if __name__ == "__main__":
    main()
