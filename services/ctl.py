"""`python -m services.ctl up|down|status|where|serve|serve-down`: the local Label Studio and
SeaweedFS that `make run` uses, and (`serve`) a Prefect server with a worker and the deployments
of prefect.yaml. Their data lives in `.services/` at the top of the checkout (git-ignored); `up`
writes `.services/env` with the settings the pipeline needs, and a second `up` reuses what is
running. Works from any folder of the checkout, and refuses outside one."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from services.labelstudio import LabelStudioService, LabelStudioStartError
from services.prefect_server import PrefectServer, PrefectServerError
from services.seaweedfs import SeaweedError, SeaweedService

BUCKET = "corpusflow"
SECRET_BLOCKS = "corpusflow"  # the prefix prefect.yaml's CORPUSFLOW_SECRET_BLOCKS names


class NotInCheckout(RuntimeError):
    """The working folder is not inside a corpusflow checkout."""


def checkout_root(start: Path | None = None) -> Path:
    """The top folder of the corpusflow checkout holding `start` (default: the working folder),
    so that `.services/` is always the checkout's own, whichever subfolder we are called from."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if (folder / "services" / "ctl.py").is_file() and project.is_file():
            if 'name = "corpusflow"' in project.read_text(encoding="utf-8"):
                return folder
    raise NotInCheckout(
        f"{here} is not inside a corpusflow checkout (no pyproject.toml of corpusflow above "
        f"it); cd into the checkout first, e.g. {Path(__file__).resolve().parent.parent}"
    )


def base() -> Path:
    return checkout_root() / ".services"


def env_file() -> Path:
    return base() / "env"


def _services() -> tuple[LabelStudioService, SeaweedService]:
    return (
        LabelStudioService.from_env(base()),
        SeaweedService.from_env(base()),
    )


def read_env() -> dict[str, str]:
    """The settings `up` wrote to `.services/env`."""
    path = env_file()
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `make services-up` first")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def up() -> None:
    ls, s3 = _services()
    s3.start()
    s3.ensure_bucket(BUCKET)
    print(f"SeaweedFS S3   {s3.endpoint_url}  (bucket {BUCKET})")
    ls.start()
    print(f"Label Studio   {ls.url}")
    env = {
        "LABEL_STUDIO_URL": ls.url,
        "LABEL_STUDIO_API_KEY": ls.token,
        "AWS_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": "us-east-1",
        "CORPUSFLOW_STORE": f"s3://{BUCKET}/store",
    }
    path = env_file()
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    path.chmod(0o600)

    from annotators.labelstudio import LabelStudioClient
    from flows.tasks import INSTRUCTIONS
    from schemas.labelstudio_config import label_config
    from schemas.settings import Settings

    project = Settings().label_studio_project
    project_id = LabelStudioClient(ls.url, ls.token).ensure_project(
        project, label_config(), INSTRUCTIONS
    )
    print(f"Label Studio project '{project}' id {project_id}; settings in {path}")


def down() -> None:
    for svc in _services():
        svc.stop()
    print("services stopped")


def prefect_server() -> PrefectServer:
    return PrefectServer.from_env(base())


def serve() -> None:
    """The services, a Prefect server (SQLite in .services/prefect/), the process work pool, the
    Secret blocks, a worker with the services' settings, and every deployment of prefect.yaml."""
    up()
    settings = read_env()
    server = prefect_server()
    print(f"Prefect server {server.url}  (starting; PREFECT_HOME {server.home})", flush=True)
    server.start()
    server.ensure_pool()
    blocks = server.save_secrets(
        SECRET_BLOCKS,
        {
            "label-studio-api-key": settings["LABEL_STUDIO_API_KEY"],
            "aws-access-key-id": settings["AWS_ACCESS_KEY_ID"],
            "aws-secret-access-key": settings["AWS_SECRET_ACCESS_KEY"],
        },
    )
    print(f"Secret blocks  {', '.join(blocks)}")
    print("deploying prefect.yaml (prefect deploy --all)...", flush=True)
    server.deploy(settings, cwd=checkout_root())
    server.start_worker(settings)
    print(f"worker         on pool {server.pool}; log {server.home / 'worker.log'}")
    print()
    print(f"Prefect UI at {server.url}; to use this server from a shell:")
    print(f"  export PREFECT_API_URL={server.api_url}")
    print("  .venv/bin/prefect deployment run corpusflow-run/samples")
    print("  .venv/bin/corpusflow run     # runs on this server, with no temporary one")


def serve_down() -> None:
    server = prefect_server()
    stopped = [what for what in ("worker", "server") if server.stop(what)]
    print(f"Prefect {' and '.join(stopped)} stopped" if stopped else "no Prefect server ran")


def status() -> int:
    ls, s3 = _services()
    states = {
        "labelstudio": ls.status(),
        "seaweedfs": s3.status(),
        "prefect": prefect_server().status(),
    }
    print(json.dumps(states, indent=2, default=str))
    return 0 if all(states[s].get("running") for s in ("labelstudio", "seaweedfs")) else 1


def where() -> None:
    ls, s3 = _services()
    print()
    print(f"Annotators log in at {ls.url}  (admin: {ls.username} / {ls.password};")
    print("  add annotators under Organization → People, or with the API)")
    print(f"The corpus store is s3://{BUCKET}/store on {s3.endpoint_url}; releases under")
    print(f"  s3://{BUCKET}/store/releases/  — pull the newest with:")
    print(
        "  set -a; source .services/env; set +a; .venv/bin/corpusflow pull latest --dest release/"
    )


ACTIONS = {"up": up, "down": down, "where": where, "serve": serve, "serve-down": serve_down}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    action = args[0] if args else "status"
    if action != "status" and action not in ACTIONS:
        print(
            f"usage: python -m services.ctl {'|'.join(['status', *ACTIONS])} (not {action!r})",
            file=sys.stderr,
        )
        return 2
    try:
        if action == "status":
            return status()
        ACTIONS[action]()
    except (
        NotInCheckout,
        PrefectServerError,
        LabelStudioStartError,
        SeaweedError,
        FileNotFoundError,
    ) as exc:
        print(f"services {action}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
