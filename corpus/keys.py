"""Names of everything the stages keep in the store, in one place."""

from __future__ import annotations


class keys:  # noqa: N801 - a namespace of store key builders
    # The per-stage stores of clean documents and machine annotations (corpus.stagestore):
    # `<stage>/shards/<name>.jsonl.gz` and `<stage>/index.json.gz`. `clean(doc_id)` and
    # `machine(doc_id)` name the layout before them (one file per document), still read.
    clean_stage = "clean"
    machine_stage = "machine"

    @staticmethod
    def clean(doc_id: str) -> str:
        return f"clean/{doc_id}.json"

    @staticmethod
    def machine(doc_id: str) -> str:
        return f"machine/{doc_id}.json"

    @staticmethod
    def human(doc_id: str) -> str:
        return f"human/{doc_id}.json"

    @staticmethod
    def adjudicator(doc_id: str) -> str:
        """The adjudicator's decision collected from the adjudication project."""
        return f"human-adjudication/{doc_id}.json"

    @staticmethod
    def adjudicated(doc_id: str) -> str:
        return f"adjudicated/{doc_id}.json"

    # every decision in one object, read once by publish and compared against by adjudicate
    adjudicated_index = "adjudicated/index.json.gz"

    @staticmethod
    def stance_model(version: str) -> str:
        return f"models/stance/{version}.json"

    stance_model_current = "models/stance/current.json"

    review_state = "review/state.json"
    agreement = "review/agreement.json"
    import_file = "review/labelstudio-import.json"  # the single-file layout, deleted
    import_dir = "review/labelstudio-import/"  # one import file per machine shard
    import_state = "review/labelstudio-import.state.json"
    publish_state = "state/publish-inputs.json"
    pseudonym_salt = "config/pseudonym-salt"
