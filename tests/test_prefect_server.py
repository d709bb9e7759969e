"""corpusflow on a real Prefect server, as an operator runs it: `prefect server start` (SQLite,
a free port, its own PREFECT_HOME), `prefect deploy --all` of prefect.yaml, a process worker
that runs the `samples` deployment against the session's real Label Studio and SeaweedFS; what
the run leaves (artifacts) is read back through the Prefect API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.labelstudio import LabelStudioService
from services.prefect_server import PrefectServer
from services.seaweedfs import SeaweedService
from tests.ls_fixtures import free_port
from tests.s3_fixtures import TEST_BUCKET, make_s3_store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SECRET_PREFIX = "corpusflow"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server with its own SQLite database, stopped (with its worker) after;
    spawned here, waited for in `deployed` (it starts while Label Studio does)."""
    server = PrefectServer(home=tmp_path_factory.mktemp("prefect-home"), port=free_port())
    server.start(wait=False)
    try:
        yield server
    finally:
        server.stop_all()


@dataclass(frozen=True)
class Deployed:
    server: PrefectServer
    output: str  # what `prefect deploy --all` printed
    store_url: str
    project: str
    store_env: dict[str, str]  # the non-secret settings the deployments were made with


@pytest.fixture(scope="session")
def deployed(
    prefect_server: PrefectServer, label_studio: LabelStudioService, seaweed: SeaweedService
) -> Deployed:
    """prefect.yaml deployed against the session's services, the Secret blocks saved and a
    worker started whose environment holds no secret: the flow runs read them from the blocks."""
    server = prefect_server
    server.start(timeout=300)  # waits for the one spawned above; spawns again if it is gone
    server.ensure_pool()
    server.save_secrets(
        SECRET_PREFIX,
        {
            "label-studio-api-key": label_studio.token,
            "aws-access-key-id": seaweed.access_key,
            "aws-secret-access-key": seaweed.secret_key,
        },
    )
    store_url = f"s3://{TEST_BUCKET}/prefect-{uuid.uuid4().hex[:8]}"
    store_env = {
        "LABEL_STUDIO_URL": label_studio.url,
        "CORPUSFLOW_STORE": store_url,
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
    }
    output = server.deploy(store_env, cwd=ROOT)  # raises, with its output, unless exit 0
    project = f"prefect-{uuid.uuid4().hex[:6]}"
    blank = {
        name: ""  # nothing of the developer's shell reaches the flow runs
        for name in (
            "LABEL_STUDIO_URL",
            "LABEL_STUDIO_API_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
            "CORPUSFLOW_STORE",
        )
    }
    server.start_worker(
        {**blank, "CORPUSFLOW_LS_PROJECT": project, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    )
    return Deployed(server, output, store_url, project, store_env)


def run_deployment_to_end(
    server: PrefectServer, name: str, job_variables: dict[str, Any] | None = None
) -> Any:
    """Start a run of deployment `name` and wait until it is final; returns the flow run."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name(name)
        run = c.create_flow_run_from_deployment(deployment.id, job_variables=job_variables)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            run = c.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(1)
    raise AssertionError(
        f"flow run {run.id} of {name} not final in time (state {run.state}); worker log:\n"
        + server.log_tail("worker", 60)
    )


def test_prefect_server_deploy_all_creates_every_deployment_of_prefect_yaml(
    deployed: Deployed, label_studio: LabelStudioService, seaweed: SeaweedService
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    wanted = {d["name"] for d in spec["deployments"]}
    with temporary_settings({PREFECT_API_URL: deployed.server.api_url}):
        with get_client(sync_client=True) as c:
            deployments = c.read_deployments()
    assert {d.name for d in deployments} == wanted, deployed.output[-3000:]
    for d in deployments:
        env = d.job_variables["env"]
        # each deployment says which Label Studio and store it expects ...
        assert env["CORPUSFLOW_EXPECT"] == "label-studio,s3"
        assert env["LABEL_STUDIO_URL"] == label_studio.url
        assert env["CORPUSFLOW_STORE"] == deployed.store_url
        # ... and no secret is in it: those come from the Secret blocks
        dumped = json.dumps(d.job_variables)
        assert label_studio.token not in dumped and seaweed.secret_key not in dumped


def test_prefect_server_worker_runs_samples_to_completed_with_artifacts(
    deployed: Deployed, seaweed: SeaweedService, ls_client: Any
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    run = run_deployment_to_end(deployed.server, "corpusflow-run/samples")
    assert run.state.is_completed(), (
        f"{run.state.type}: {run.state.message}\n{deployed.server.log_tail('worker', 80)}"
    )

    with temporary_settings({PREFECT_API_URL: deployed.server.api_url}):
        with get_client(sync_client=True) as c:
            artifacts = c.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
            task_runs = c.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
    by_key = {a.key: a for a in artifacts if a.key}
    report = by_key["corpusflow-run-report"]
    assert report.type == "markdown"
    md = str(report.data)
    assert "| ingest | 5 cleaned, 0 unchanged, 0 skipped, 0 quarantined |" in md, md
    assert "{'" not in md, "no raw Python dicts in the report"
    assert "Label Studio project" in md and f"{deployed.store_url}/releases/v0001/" in md, md
    assert "5 created" in md, md
    quarantine = by_key["corpusflow-quarantine"]
    assert quarantine.type == "table"
    progress = by_key["corpusflow-run-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0  # type: ignore[arg-type]
    names = {t.name for t in task_runs}
    assert {"ingest-batch 1/1", "annotate-batch 1/1"} <= names, names

    # the run went to the real services: a release in SeaweedFS, tasks in Label Studio
    store = make_s3_store(seaweed, deployed.store_url.split("/", 3)[3])
    assert store.head("releases/latest.json") is not None
    (project,) = [p for p in ls_client.projects() if p["title"] == deployed.project]
    assert f"/projects/{project['id']}" in md
    assert len(list(ls_client.tasks(project["id"]))) == 5


def test_prefect_server_run_without_label_studio_settings_fails_naming_them(
    deployed: Deployed,
) -> None:
    # this run's job variables blank the Label Studio address the deployment holds (they are
    # merged into the deployment's), and the worker's environment has none either
    env = {"LABEL_STUDIO_URL": ""}
    run = run_deployment_to_end(
        deployed.server, "corpusflow-run/samples", job_variables={"env": env}
    )
    assert run.state.is_failed(), f"{run.state.type}: {run.state.message}"
    assert "LABEL_STUDIO_URL is not set" in (run.state.message or ""), run.state.message
    assert "CORPUSFLOW_EXPECT" in (run.state.message or "")
