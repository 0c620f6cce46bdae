"""Trains the digit classifier behind frame FID and identity consistency.

    VAELIB_MNIST=/path/to/mnist.npz python benchmarks/train_digit_classifier.py \\
        --out data/pretrained/digit-classifier

`vaelib.metrics.digit_classifier` (a small multi-label CNN) learns which
digits a 32x32 frame of moving digits shows, from single frames of
`MovingDigits.scaled(32, num_frames=1, split="train")` (two MNIST training
digits each, multi-hot labels, binary cross-entropy). It is tested on frames
made from MNIST's test digits: `set_accuracy` is the share of test frames
whose set of digits (the rule of `vaelib.metrics.identity_consistency`) is
exactly right, `digit_accuracy` the share of single digits found. Writes
`model.keras` and `metrics.json` (with this command) to `--out`.
"""

import argparse
import json
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import digit_classifier  # noqa: E402


def frames_and_labels(split, n, seed, frame_size):
    generator = MovingDigits.scaled(frame_size, num_frames=1, split=split, seed=seed)
    frames = generator.clips(n)[:, 0]
    labels = generator.metadata(n)["labels"]
    multi_hot = np.zeros((n, 10), "float32")
    multi_hot[np.arange(n)[:, None], labels] = 1.0
    return frames, multi_hot, generator.digit_source


def predicted_sets(probabilities, threshold=0.5):
    shown = probabilities > threshold
    shown[np.arange(len(shown)), probabilities.argmax(axis=-1)] = True
    return shown


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame-size", type=int, default=32)
    parser.add_argument("--train-frames", type=int, default=30000)
    parser.add_argument("--test-frames", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    train, train_labels, source = frames_and_labels(
        "train", args.train_frames, args.seed, args.frame_size
    )
    test, test_labels, _ = frames_and_labels(
        "test", args.test_frames, 1, args.frame_size
    )
    model = digit_classifier(frame_size=args.frame_size)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    start = time.perf_counter()
    model.fit(
        train, train_labels, epochs=args.epochs, batch_size=args.batch_size, verbose=2
    )
    seconds = time.perf_counter() - start

    shown = predicted_sets(model.predict(test, batch_size=512, verbose=0))
    truth = test_labels > 0.5
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    metrics = {
        "model": "vaelib.metrics.digit_classifier",
        "data": f"MovingDigits.scaled({args.frame_size}, num_frames=1): "
        f"{args.train_frames} training frames (seed {args.seed}), "
        f"{args.test_frames} test frames from the test digits (seed 1), "
        f"{source} digits, two digits per frame",
        "set_accuracy": float(np.mean(np.all(shown == truth, axis=-1))),
        "digit_accuracy": float(np.sum(shown & truth) / np.sum(truth)),
        "epochs": args.epochs,
        "train_seconds": round(seconds, 1),
        "backend": keras.backend.backend(),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
