"""Machine annotators (spaCy components) and the human annotators' side (Label Studio client).

- `annotators.pipeline`: `load_nlp()`, `annotate()`, `MODEL_VERSION`: NER + targets + stance.
- `annotators.ner`: entity ruler patterns and span repairs; entity scores.
- `annotators.targets`: canonical targets (mention grouping) and their salience.
- `annotators.stance`: target-directed stance; `predict_stance()` for `corpusflow stance`.
- `annotators.stance_model`: the stance transformer at run time (ONNX + tokenizers), input
  marking, calibration; the model ships in `annotators/models/stance-minilm/`.
- `annotators.finetune`: fine-tuning and ONNX export of that transformer (torch; runs in
  `.train-venv`, see `make train-env`).
- `annotators.train`: `train_stance()` / `train_stance_cli()`: the stance classifier from
  seed examples and a release's gold stances; `train_transformer()`: the transformer's loop
  (held-back slice, refusal); `load_nlp(stance_model=PATH)` uses either result.

Nothing is imported here, so importing one module does not load the spaCy model.
"""
