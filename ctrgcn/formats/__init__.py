"""Weight formats other than the project's own file: readers for PyTorch checkpoints (zip),
PaddleVideo ``.pdparams`` pickles and Paddle inference files, all without PyTorch or Paddle; the
float16 / int8 writer's BatchNorm folding; the ONNX exporter.

Every reader returns ``name -> float32-compatible ndarray`` under the source's own names;
``names.normalise`` maps them onto the project's names."""
