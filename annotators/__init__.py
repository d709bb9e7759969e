"""Machine annotators (spaCy components) and the human annotators' side (Label Studio client).

- `annotators.pipeline`: `load_nlp()`, `annotate()`, `MODEL_VERSION`: NER + targets + stance.
- `annotators.ner`: entity ruler patterns and span repairs; entity scores.
- `annotators.targets`: canonical targets (mention grouping) and their salience.
- `annotators.stance`: target-directed stance; `predict_stance()` for `corpusflow stance`.
- `annotators.train`: `train_stance()` / `train_stance_cli()`: the stance classifier from
  seed examples and a release's gold stances; `load_nlp(stance_model=PATH)` uses the result.

Nothing is imported here, so importing one module does not load the spaCy model.
"""
