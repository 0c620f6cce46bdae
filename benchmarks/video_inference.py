"""Inference time of a video VAE: eager calls against compiled ones, one run.

    KERAS_BACKEND=jax python benchmarks/video_inference.py
    python benchmarks/video_inference.py            # TensorFlow, for comparison

Times the forward pass and the decoding of the posterior mean of the shipped
ConvLSTM VAE (`data/pretrained/convlstm-moving-mnist`) on 200 held-out clips
of 20 frames of 32x32 in batches of 16, the work `vaelib.metrics.evaluate_video`
does, two ways:

- eager: `model(batch, training=False)` and `model.decoder(z)`, batch by
  batch, as `evaluate_video` did before (on JAX every op of the ConvLSTMs'
  time loops is dispatched from Python);
- `run_in_batches`: what `evaluate_video` does now, `predict_on_batch` on JAX
  (one XLA program, every batch padded to 16 so it compiles once; the first
  call's compilation is timed separately), a direct call on TensorFlow.

Then `evaluate_video` itself, end to end (identity and active units
included). Both ways compute the same numbers (the script checks).
"""

import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import evaluate_video  # noqa: E402
from vaelib.models.base import run_in_batches  # noqa: E402

MODEL = pathlib.Path(__file__).parents[1] / "data/pretrained/convlstm-moving-mnist"


def eager(model, clips, batch_size):
    means = []
    for start in range(0, len(clips), batch_size):
        _, z_mean, _ = model(clips[start : start + batch_size], training=False)
        means.append(keras.ops.convert_to_numpy(model.decode(z_mean)))
    return np.concatenate(means)


def compiled(model, clips, batch_size):
    _, z_mean, _ = run_in_batches(model, clips, batch_size)
    decoded = run_in_batches(model.decoder, z_mean, batch_size)
    return keras.ops.convert_to_numpy(model.mean_of(decoded))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main():
    model = keras.saving.load_model(MODEL / "model.keras")
    clips = MovingDigits.scaled(32, num_frames=20, split="test", seed=1).clips(200)
    slow, eager_seconds = timed(eager, model, clips, 16)
    _, first_seconds = timed(compiled, model, clips[:16], 16)  # compiles
    fast, compiled_seconds = timed(compiled, model, clips, 16)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    _, evaluate_seconds = timed(evaluate_video, model, clips)
    print(
        f"backend {keras.backend.backend()}, 200 clips of 20 frames of 32x32, batch 16"
    )
    print(f"{'forward + decode, eager':<40} {eager_seconds:7.1f} s   (baseline)")
    print(
        f"{'forward + decode, run_in_batches':<40} {compiled_seconds:7.1f} s   "
        f"{eager_seconds / compiled_seconds:5.1f}x faster"
    )
    print(f"{'  first call (compiles), 16 clips':<40} {first_seconds:7.1f} s")
    print(f"{'evaluate_video, end to end':<40} {evaluate_seconds:7.1f} s")


if __name__ == "__main__":
    main()
