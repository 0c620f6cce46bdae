"""Held-out likelihood of the shipped image VAEs on binarised MNIST, and published ones.

    python benchmarks/image_quality.py                          # all 10,000, k = 5000
    python benchmarks/image_quality.py --iwae-k 200 --max-images 1000   # minutes
    KERAS_BACKEND=jax python benchmarks/image_quality.py

Measures the pretrained models in `data/pretrained/` (`mlp-mnist`, `conv-mnist`)
on the statically binarised MNIST test set (each grey pixel drawn once as 0 or
1 with `vaelib.data.STATIC_BINARIZATION_SEED`, so the Bernoulli likelihood is
exact), in nats per image: the negative ELBO (one posterior sample), the
importance-weighted NLL with `k` samples (Burda et al., 2016), bits per
dimension, and the ratio to a baseline measured in the same run, independent
Bernoulli pixels (each pixel's frequency in the binarised training set; no
latent variable at all). Beside them, the published reference rows with their
source and protocol. The models were trained on dynamically binarised
training images (a fresh draw every epoch); their training command is in
their `metrics.json`.

MNIST comes from `$VAELIB_MNIST` (or Keras' cache, or TFDS); without MNIST the
script stops: the references are MNIST numbers and nothing else compares.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vaelib  # noqa: E402, F401 - registers the model classes for loading
from vaelib.data import (  # noqa: E402
    STATIC_BINARIZATION_SEED,
    binarize,
    load_digits_images,
)
from vaelib.metrics import bits_per_dim, evaluate_images  # noqa: E402

PRETRAINED = pathlib.Path(__file__).resolve().parents[1] / "data" / "pretrained"
MODELS = ("mlp-mnist", "conv-mnist")
# (name, nats, source and protocol)
REFERENCES = (
    (
        "VAE, MLP (pythae reproduction)",
        89.78,
        "pythae's reproduction of Rezende & Mohamed (2015, Table 1, 89.9): "
        "statically binarised MNIST, NLL with 200 importance samples",
    ),
    (
        "VAE (Burda et al., 2016)",
        86.76,
        "Burda, Grosse & Salakhutdinov (2016), Table 1, VAE with one stochastic "
        "layer trained with k = 1: NLL with 5000 importance samples",
    ),
)


def independent_pixels_nll(train, test):
    """NLL of `test` under independent Bernoulli pixels fitted to `train`."""
    probability = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    log_likelihood = test * np.log(probability) + (1 - test) * np.log1p(-probability)
    return float(-log_likelihood.reshape(len(test), -1).sum(axis=1).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iwae-k", type=int, default=5000)
    parser.add_argument(
        "--max-images", type=int, default=10_000, help="first test images measured"
    )
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    test_set = load_digits_images("test")
    if not test_set.is_mnist:
        raise SystemExit(
            "MNIST is not available (set VAELIB_MNIST to an mnist.npz): the "
            "references are MNIST numbers"
        )
    train_set = load_digits_images("train", source=test_set.source)
    test = binarize(test_set.images, seed=STATIC_BINARIZATION_SEED)[: args.max_images]
    baseline = independent_pixels_nll(binarize(train_set.images, seed=2), test)

    rows = [("independent pixels (baseline)", float("nan"), baseline, 0.0, "")]
    for name in args.models.split(","):
        folder = PRETRAINED / name
        if not (folder / "model.keras").exists():
            print(f"{name}: not shipped, skipped")
            continue
        model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
        trained = json.loads((folder / "metrics.json").read_text())
        start = time.perf_counter()
        metrics = evaluate_images(model, test, args.iwae_k, seed=0)
        seconds = time.perf_counter() - start
        rows.append(
            (
                f"{name} (ours)",
                metrics["negative_elbo"],
                metrics[f"iwae_nll_k{args.iwae_k}"],
                seconds,
                f"{trained['epochs']} epochs, {trained['train_seconds'] / 60:.0f} min",
            )
        )

    print(
        f"\nImage likelihood on the statically binarised {test_set.description} "
        f"test set: first {len(test)} images, IWAE with k = {args.iwae_k}, "
        f"backend {keras.backend.backend()}, nats per image (lower is better)\n"
    )
    header = (
        f"| {'model':<32} | {'-ELBO':>8} | {'IWAE NLL':>9} | {'bits/dim':>8} "
        f"| {'vs baseline':>11} | {'eval s':>7} | {'trained':<22} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for name, negative_elbo, nll, seconds, trained in rows:
        elbo_text = "-" if np.isnan(negative_elbo) else f"{negative_elbo:8.2f}"
        bits = bits_per_dim(nll, 784)
        print(
            f"| {name:<32} | {elbo_text:>8} | {nll:9.2f} | {bits:8.4f} "
            f"| {nll / baseline:10.3f}x | {seconds:7.1f} | {trained:<22} |"
        )
    for name, nats, _ in REFERENCES:
        print(
            f"| {name + ' *':<32} | {'-':>8} | {nats:9.2f} | "
            f"{bits_per_dim(nats, 784):8.4f} | {nats / baseline:10.3f}x | {'-':>7} "
            f"| {'published':<22} |"
        )
    print()
    for name, _, protocol in REFERENCES:
        print(f"* {name}: {protocol}.")


if __name__ == "__main__":
    main()
