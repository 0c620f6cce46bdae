"""Fits the mixture that `LearnedPriorVAE.sample` draws z_0 from, and measures it.

    python benchmarks/first_frame_prior.py [--components 10,50] [--write PATH]

The learned prior p(z_0) of the shipped `learned-prior-moving-mnist` is one
diagonal Gaussian; its samples start dim and stay dim. For each number of
components, this rebuilds the shipped model with a Gaussian mixture for z_0,
fits it to posterior draws of z_0 on 4,000 training clips
(`LearnedPriorVAE.fit_first_frame_prior`: "ex-post density estimation",
Ghosh et al., 2020) and prints the generation statistics of 100 samples
against 100 held-out clips, beside p(z_0) and beside futures that start
from a real first frame. `--write` saves the model with the last number of
components (how the shipped model got its mixture).
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--components", default="10,50")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--write", default=None, help="save the last model here")
    args = parser.parse_args()

    model = keras.saving.load_model(SHIPPED, safe_mode=True)
    frames = model.data_shape[0]
    data = dict(num_frames=frames)
    train = MovingDigits.scaled(32, split="train", seed=11, **data).clips(4000)
    real = MovingDigits.scaled(32, split="test", seed=1, **data).clips(args.clips)
    other = MovingDigits.scaled(32, split="test", seed=2, **data).clips(args.clips)
    classifier = load_digit_classifier()
    reference = generation_statistics(other)
    brightness = other.mean(axis=(0, 2, 3, 4))

    rows = {"p(z_0)": model.sample(args.clips, seed=0, first_frame="prior")}
    for k in (int(c) for c in args.components.split(",")):
        model = with_mixture(model, k)
        model.fit_first_frame_prior(train, seed=0)
        rows[f"mixture of {k} Gaussians"] = model.sample(args.clips, seed=0)
    after_real = model.predict_future(other[:, :1], frames - 1, seed=0)
    print(
        f"{args.clips} samples against {args.clips} held-out clips; mixtures "
        "fitted on 4,000 training clips\n"
    )
    print(
        "| z_0 drawn from | x real | ink | frame corr above real | frame FID | "
        "identity | brightness, frame 0 / last |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, clips in rows.items():
        stats = generation_statistics(clips)
        per_frame = clips.mean(axis=(0, 2, 3, 4)) / brightness
        print(
            f"| {name} | {stats['mean_pixel'] / reference['mean_pixel']:.2f} | "
            f"{stats['ink_share']:.1%} | "
            f"{stats['frame_correlation'] - reference['frame_correlation']:.3f} | "
            f"{frame_fid(real, clips, classifier):.1f} | "
            f"{identity_consistency(clips, classifier)['consistency']:.1%} | "
            f"{per_frame[0]:.2f} / {per_frame[-1]:.2f} |"
        )
    per_frame = after_real.mean(axis=(0, 2, 3, 4)) / brightness[1:]
    print(
        f"\nFrames 1-{frames - 1} after a real frame 0 (predict_future): "
        f"{per_frame[0]:.2f}x as bright as real frames in frame 1, "
        f"{per_frame[-1]:.2f}x in frame {frames - 1}"
    )
    if args.write:
        model.save(args.write)
        print(f"saved the model with a mixture of {k} to {args.write}")


if __name__ == "__main__":
    main()
