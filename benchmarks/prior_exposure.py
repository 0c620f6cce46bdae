"""How far a learned prior is from the posterior when it reads real or decoded frames.

    python benchmarks/prior_exposure.py [model.keras ...]

A learned prior is trained reading some frames and, when generating, reads
the frames the decoder drew. For each `LearnedPriorVAE` given (the shipped
`learned-prior-moving-mnist` by default), on 100 held-out clips of moving
MNIST digits, this prints KL(q(z_t | x_<=t) || p(z_t | .)) per frame, in
nats, with the prior reading

- the real frames (what SVG-LP's prior p(z_t | x_<t) is trained on), and
- the frames decoded from one posterior draw of z (what vaelib's prior
  p(z_t | z_<t) is trained on, and the kind of frame it reads when
  generating).

A prior trained on real frames and far from the posterior on decoded ones
is off its training data whenever it generates. The model shipped at
commit 2ebd63f was such a prior; to measure it:

    git show 2ebd63f:data/pretrained/learned-prior-moving-mnist/model.keras \
        > /tmp/svg-lp.keras
    python benchmarks/prior_exposure.py /tmp/svg-lp.keras
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import ops  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402

SHIPPED = (
    pathlib.Path(__file__).resolve().parents[1]
    / "data/pretrained/learned-prior-moving-mnist/model.keras"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=[str(SHIPPED)])
    parser.add_argument("--clips", type=int, default=100)
    args = parser.parse_args()
    print(
        f"KL(q || p) in nats on {args.clips} held-out clips: frame 0, the mean "
        "of the later frames, and the clip's sum\n"
    )
    print(f"| {'model':<40} | {'prior reads':<14} | frame 0 | later | clip |")
    print(f"|{'-' * 42}|{'-' * 16}|---------|-------|------|")
    for path in map(pathlib.Path, args.models):
        model = keras.saving.load_model(path, compile=False)
        # the folder of a shipped model.keras, else the file's name
        name = path.parent.name if path.name == "model.keras" else path.stem
        real = MovingDigits.scaled(
            model.data_shape[1], num_frames=model.data_shape[0], split="test", seed=1
        ).clips(args.clips)
        z_mean, z_log_var = model.encode(real)
        noise = keras.random.normal(ops.shape(z_mean), seed=0)
        decoded = model.decode(z_mean + ops.exp(0.5 * z_log_var) * noise)
        for reads, frames in (("real frames", real), ("decoded frames", decoded)):
            kl = model.kl_per_frame(real, prior_reads=frames).mean(axis=0)
            print(
                f"| {name[:40]:<40} | {reads:<14} | {kl[0]:7.1f} | "
                f"{kl[1:].mean():5.1f} | {kl.sum():4.0f} |"
            )


if __name__ == "__main__":
    main()
