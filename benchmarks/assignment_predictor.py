"""Assignment 4's reference predictor against the grader's baselines, and a blur.

    python benchmarks/assignment_predictor.py [--budget 600x5 1200x10] [--sets 3]

Trains the reference solution of `course/assignments/source/04_video_predictor`
(its `build_predictor`, read from the notebook) on moving MNIST digits, for
each budget `CLIPSxEPOCHS` (600x5 is the assignment's), and prints, on `--sets`
sets of 96 held-out clips (5 context frames, 5 to predict, 32x32), the MSE per
frame of its predictions, of the best of the grader's three baselines (blank
frames, the context's mean, the last frame repeated) and of `tuned_blur` (the
last frame blurred and dimmed as best suits each future step, tuned on the true
future), with the ratios. The pass mark is `vaelib.grading.PREDICTOR_MARGIN`
times the best of the three; the blur is what a `predict` without a model can
reach (benchmarks/README.md).
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.grading import BASELINES, PREDICTOR_SETTINGS, predictor_scores  # noqa: E402
from vaelib.layers import FusedConvLSTM2D, GaussianHead, PerFrame  # noqa: E402
from vaelib.models import VAE  # noqa: E402

SOURCE = (
    pathlib.Path(__file__).resolve().parents[1]
    / "course/assignments/source/04_video_predictor/04_video_predictor.ipynb"
)


def reference_builder():
    """The notebook's `build_predictor`, solution included."""
    cells = json.loads(SOURCE.read_text())["cells"]
    (code,) = [
        "".join(cell["source"])
        for cell in cells
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "model"
    ]
    names = {
        "keras": keras,
        "FusedConvLSTM2D": FusedConvLSTM2D,
        "GaussianHead": GaussianHead,
        "PerFrame": PerFrame,
        "VAE": VAE,
        "NUM_FRAMES": PREDICTOR_SETTINGS["num_frames"],
        "CONTEXT": PREDICTOR_SETTINGS["context_frames"],
        "SIZE": PREDICTOR_SETTINGS["frame_size"],
        "LATENT_DIM": 8,
    }
    exec(code, names)  # the course's own notebook
    return names["build_predictor"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", nargs="+", default=["600x5", "1200x10"])
    parser.add_argument("--sets", type=int, default=3)
    arguments = parser.parse_args()
    size = PREDICTOR_SETTINGS["frame_size"]
    frames = PREDICTOR_SETTINGS["num_frames"]
    context = PREDICTOR_SETTINGS["context_frames"]
    build_predictor = reference_builder()
    held_out = [
        MovingDigits.scaled(size, num_frames=frames, split="test", seed=11 + i).clips(
            PREDICTOR_SETTINGS["num_clips"]
        )
        for i in range(arguments.sets)
    ]
    print(
        "| budget | training s | set | reference | best of 3 | tuned blur "
        "| reference / best of 3 | reference / blur | blur / best of 3 |"
    )
    print("|" + "---|" * 9)
    for budget in arguments.budget:
        num_clips, epochs = map(int, budget.split("x"))
        clips = MovingDigits.scaled(
            size, num_frames=frames, split="train", seed=0
        ).clips(num_clips)
        keras.utils.set_random_seed(0)
        model = build_predictor()
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        began = time.perf_counter()
        model.fit(clips, epochs=epochs, batch_size=16, verbose=0)
        seconds = time.perf_counter() - began
        for index, test in enumerate(held_out):
            padded = np.zeros_like(test)
            padded[:, :context] = test[:, :context]
            prediction = ops.convert_to_numpy(model.reconstruct(padded))[:, context:]
            scores = predictor_scores(test[:, :context], test[:, context:], prediction)
            best = min(scores[name] for name in BASELINES)
            ours, blur = scores["prediction"], scores["tuned_blur"]
            ratios = f"{ours / best:.3f} | {ours / blur:.3f} | {blur / best:.3f}"
            print(
                f"| {budget} | {seconds:.0f} | {index} | {ours:.1f} | {best:.1f} | "
                f"{blur:.1f} | {ratios} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
