"""Held-out likelihood of the image VAEs after a fixed training budget.

    python benchmarks/image_quality.py                 # digits, 60 epochs
    python benchmarks/image_quality.py --epochs 10     # quicker
    KERAS_BACKEND=jax python benchmarks/image_quality.py

Trains `mlp_vae` (784-400-40, the shape of the published reference model) and
`conv_vae` (40 latents) on statically binarised digits (each grey pixel drawn
once as 0 or 1 with a fixed seed, so the Bernoulli likelihood is exact), and
prints, in nats per image on the test split: the negative ELBO, the
importance-weighted NLL with k = 200, bits per dimension, and the ratio to a
baseline measured in the same run, independent Bernoulli pixels (each pixel's
training-set frequency; no latent variable at all). A VAE that does not beat
it has learned nothing.

The published reference, an MLP VAE (784-400-40) at about 89.8 nats (IWAE,
k = 200) on statically binarised MNIST, only applies when the source printed
is MNIST: scikit-learn's 8x8 digits upsampled to 28x28 are smoother and much
fewer (1,437 training images), so their numbers are not comparable.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaelib.data import binarize, load_digits_images  # noqa: E402
from vaelib.metrics import bits_per_dim, evaluate_images  # noqa: E402
from vaelib.models import conv_vae, mlp_vae  # noqa: E402

PUBLISHED_MLP_IWAE_NLL = 89.8


def independent_pixels_nll(train, test):
    """NLL of `test` under independent Bernoulli pixels fitted to `train`."""
    probability = np.clip(train.mean(axis=0), 1e-3, 1 - 1e-3)
    log_likelihood = test * np.log(probability) + (1 - test) * np.log1p(-probability)
    return float(-log_likelihood.reshape(len(test), -1).sum(axis=1).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--iwae-k", type=int, default=200)
    parser.add_argument(
        "--source", default="auto", choices=("auto", "tfds", "keras", "sklearn")
    )
    args = parser.parse_args()

    train_set = load_digits_images("train", source=args.source)
    test_set = load_digits_images("test", source=args.source)
    train = binarize(train_set.images, seed=0)
    test = binarize(test_set.images, seed=1)
    baseline = independent_pixels_nll(train, test)

    rows = [("independent pixels (baseline)", float("nan"), baseline, 0.0)]
    for name, build in (
        ("mlp_vae 784-400-40", lambda: mlp_vae(latent_dim=40, hidden=(400,), seed=0)),
        ("conv_vae (32, 64) -> 40", lambda: conv_vae(latent_dim=40, seed=0)),
    ):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        start = time.perf_counter()
        model.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        metrics = evaluate_images(model, test, args.iwae_k)
        rows.append(
            (
                name,
                metrics["negative_elbo"],
                metrics[f"iwae_nll_k{args.iwae_k}"],
                seconds,
            )
        )

    print(
        f"\nImage likelihood on statically binarised {train_set.source} digits "
        f"({len(train)} train / {len(test)} test), {args.epochs} epochs, "
        f"backend {keras.backend.backend()}, nats per image (lower is better)\n"
    )
    header = f"| {'model':<30} | {'-ELBO':>8} | {'IWAE NLL k=' + str(args.iwae_k):>15} "
    header += f"| {'bits/dim':>8} | {'vs baseline':>11} | {'train s':>7} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for name, negative_elbo, nll, seconds in rows:
        elbo_text = "-" if np.isnan(negative_elbo) else f"{negative_elbo:8.2f}"
        bits = bits_per_dim(nll, 784)
        print(
            f"| {name:<30} | {elbo_text:>8} | {nll:15.2f} | {bits:8.4f} "
            f"| {nll / baseline:10.3f}x | {seconds:7.1f} |"
        )
    if train_set.source == "sklearn":
        print(
            "\nReference (not comparable here: different data): MLP VAE 784-400-40"
            " on statically binarised MNIST, IWAE NLL (k=200) about "
            f"{PUBLISHED_MLP_IWAE_NLL} nats."
        )
    else:
        reference = "published MLP VAE (reference)"
        print(f"| {reference:<30} | {'-':>8} | {PUBLISHED_MLP_IWAE_NLL:15.2f} |")


if __name__ == "__main__":
    main()
