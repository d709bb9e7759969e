"""`python -m services.ctl up|down|status|where`: the local Label Studio and SeaweedFS that
`make run` uses. Their data lives in `.services/` (git-ignored); `up` writes `.services/env`
with the settings the pipeline needs, and a second `up` reuses what is running."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from services.labelstudio import LabelStudioService
from services.seaweedfs import SeaweedService

BASE = Path(".services")
ENV_FILE = BASE / "env"
BUCKET = "corpusflow"


def _services() -> tuple[LabelStudioService, SeaweedService]:
    return (
        LabelStudioService.from_env(BASE),
        SeaweedService.from_env(BASE),
    )


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
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    ENV_FILE.chmod(0o600)

    from flows.tasks import INSTRUCTIONS
    from review.client import LabelStudioClient
    from review.config import label_config
    from schemas.settings import Settings

    project = Settings().label_studio_project
    project_id = LabelStudioClient(ls.url, ls.token).ensure_project(
        project, label_config(), INSTRUCTIONS
    )
    print(f"Label Studio project '{project}' id {project_id}; settings in {ENV_FILE}")


def down() -> None:
    for svc in _services():
        svc.stop()
    print("services stopped")


def status() -> int:
    ls, s3 = _services()
    states = {"labelstudio": ls.status(), "seaweedfs": s3.status()}
    print(json.dumps(states, indent=2, default=str))
    return 0 if all(s.get("running") for s in states.values()) else 1


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


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    action = args[0] if args else "status"
    if action == "up":
        up()
    elif action == "down":
        down()
    elif action == "status":
        return status()
    elif action == "where":
        where()
    else:
        print(
            f"usage: python -m services.ctl up|down|status|where (not {action!r})", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
