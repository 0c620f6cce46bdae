"""Fits the mixture that `LearnedPriorVAE.sample` draws z_0 from, and measures it.

    python benchmarks/first_frame_prior.py [--components 1,5,10,20,50] [--write PATH]

The learned prior p(z_0) of the shipped `learned-prior-moving-mnist` is one
diagonal Gaussian; its samples start dim and stay dim. For each number of
components, this rebuilds the shipped model with a Gaussian mixture for z_0
and fits it to posterior draws of z_0 on 4,000 training clips
(`LearnedPriorVAE.fit_first_frame_prior`: "ex-post density estimation",
Ghosh et al., 2020). It prints the mixture's mean log-density of those
draws and of draws for 1,000 other training clips (validation: a mixture
that memorises its draws scores them far higher than new ones), and the
generation statistics of 100 samples against 100 held-out clips, beside
p(z_0) and beside frames that follow a real first frame. `--write` saves
the model whose mixture has the best validation log-density (how the
shipped model got its mixture).
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import (  # noqa: E402
    frame_fid,
    generation_statistics,
    identity_consistency,
    load_digit_classifier,
)
from vaelib.models import LearnedPriorVAE  # noqa: E402

SHIPPED = (
    pathlib.Path(__file__).resolve().parents[1]
    / "data/pretrained/learned-prior-moving-mnist/model.keras"
)


def with_mixture(model, components):
    """A copy of `model` whose z_0 mixture has `components` Gaussians (unfitted)."""
    config = {**model.get_config(), "first_frame_components": components}
    copy = LearnedPriorVAE.from_config(config)
    # The same variables in the same order, the mixture's aside (layer
    # names differ: Keras numbers a second model's layers)
    ours = [v for v in copy.weights if not v.name.startswith("first_frame_")]
    theirs = [v for v in model.weights if not v.name.startswith("first_frame_")]
    for target, source in zip(ours, theirs, strict=True):
        target.assign(source)
    return copy


def posterior_draws(model, clips, seed):
    """One draw of z_0 from the posterior of each clip, `(n, latent_dim)`."""
    # In batches: one pass over thousands of clips holds gigabytes of activations
    mean, log_var = (
        np.concatenate(parts)
        for parts in zip(
            *(
                [keras.ops.convert_to_numpy(t)[:, 0] for t in model.encode(batch)]
                for batch in np.array_split(clips, max(1, len(clips) // 64))
            ),
            strict=True,
        )
    )
    noise = np.random.default_rng(seed).normal(size=mean.shape)
    return mean.astype("float64") + np.exp(0.5 * log_var) * noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--components", default="1,5,10,20,50")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--write", default=None, help="save the best model here")
    args = parser.parse_args()

    model = keras.saving.load_model(SHIPPED, safe_mode=True)
    frames = model.data_shape[0]
    data = dict(num_frames=frames)
    train = MovingDigits.scaled(32, split="train", seed=11, **data).clips(4000)
    validation = MovingDigits.scaled(32, split="train", seed=12, **data).clips(1000)
    validation = posterior_draws(model, validation, seed=1)
    real = MovingDigits.scaled(32, split="test", seed=1, **data).clips(args.clips)
    other = MovingDigits.scaled(32, split="test", seed=2, **data).clips(args.clips)
    classifier = load_digit_classifier()
    reference = generation_statistics(other)
    brightness = other.mean(axis=(0, 2, 3, 4))

    # p(z_0): the prior's first step, which reads no frame
    empty = np.zeros((1,) + model.data_shape, "float32")
    mean, log_var = (keras.ops.convert_to_numpy(t)[0, 0] for t in model.prior(empty))
    fitted_on = posterior_draws(model, train, seed=0)  # the draws the fit sees

    def gaussian_log_density(z):
        return float(
            np.mean(
                -0.5
                * np.sum(
                    np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var),
                    axis=-1,
                )
            )
        )

    rows = {
        "p(z_0)": (
            model.sample(args.clips, seed=0, first_frame="prior"),
            gaussian_log_density(fitted_on),
            gaussian_log_density(validation),
        )
    }
    best = None
    for k in (int(c) for c in args.components.split(",")):
        model = with_mixture(model, k)
        mixture = model.fit_first_frame_prior(train, seed=0)
        scores = mixture.score(fitted_on), mixture.score(validation)
        rows[f"mixture of {k} Gaussians"] = (model.sample(args.clips, seed=0), *scores)
        if best is None or scores[1] > best[1]:
            best = (model, scores[1], k)
    model, _, k = best
    after_real = model.predict_future(other[:, :1], frames - 1, seed=0)
    print(
        f"{args.clips} samples against {args.clips} held-out clips; mixtures "
        "fitted on 4,000 training clips; log-density of z_0 per draw (nats)\n"
    )
    print(
        "| z_0 drawn from | log-density, fitted / validation | x real | ink | "
        "frame corr above real | frame FID | identity | brightness, frame 0 / last |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (clips, fitted, held_out) in rows.items():
        stats = generation_statistics(clips)
        per_frame = clips.mean(axis=(0, 2, 3, 4)) / brightness
        print(
            f"| {name} | {fitted:.1f} / {held_out:.1f} | "
            f"{stats['mean_pixel'] / reference['mean_pixel']:.2f} | "
            f"{stats['ink_share']:.1%} | "
            f"{stats['frame_correlation'] - reference['frame_correlation']:.3f} | "
            f"{frame_fid(real, clips, classifier):.1f} | "
            f"{identity_consistency(clips, classifier)['consistency']:.1%} | "
            f"{per_frame[0]:.2f} / {per_frame[-1]:.2f} |"
        )
    per_frame = after_real.mean(axis=(0, 2, 3, 4)) / brightness[1:]
    print(
        f"\nBest validation log-density: {k} components. Frames 1-{frames - 1} "
        f"after a real frame 0 (predict_future): {per_frame[0]:.2f}x as bright "
        f"as real frames in frame 1, {per_frame[-1]:.2f}x in frame {frames - 1}"
    )
    if args.write:
        model.save(args.write)
        print(f"saved the model with a mixture of {k} to {args.write}")


if __name__ == "__main__":
    main()
