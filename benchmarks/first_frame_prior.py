"""Probe: does a richer prior for frame 0 make learned-prior samples brighter?

    python benchmarks/first_frame_prior.py

The shipped `LearnedPriorVAE` draws z_0 from p(z_0), one diagonal Gaussian.
This draws z_0 instead from the posterior of real first frames, or from a
Gaussian mixture fitted to posterior draws of z_0 on 4,000 training clips
("ex-post density estimation", Ghosh et al., 2020, with scikit-learn's
`GaussianMixture`), then the rest of each clip from the learned prior as
`LearnedPriorVAE.sample` does. It prints the generation statistics of 100
samples for each, against 100 held-out clips. A probe: it reaches into the
model's private step functions, and nothing here is shipped
(`benchmarks/README.md`, "Run 5").
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import (  # noqa: E402
    frame_fid,
    generation_statistics,
    identity_consistency,
    load_digit_classifier,
)
from vaelib.models import learned_prior  # noqa: E402

SHIPPED = (
    pathlib.Path(__file__).resolve().parents[1]
    / "data/pretrained/learned-prior-moving-mnist/model.keras"
)


def rollout(model, first_latents, num_frames, seed=0):
    """`model.sample`'s loop, with z_0 given (`(n, latent_dim)`) instead of drawn."""
    n = len(first_latents)
    seed_generator = keras.random.SeedGenerator(seed)
    prior_state = decoder_state = model._zero_state(n)
    previous = ops.zeros((n, 1) + model._map_shape)
    frames = []
    for t in range(num_frames):
        memory, prior_state = learned_prior._convlstm_step(
            model.prior_lstm, previous, prior_state
        )
        mean, log_var = model._prior(previous, memory)
        if t == 0:
            z = ops.reshape(ops.convert_to_tensor(first_latents), ops.shape(mean))
        else:
            noise = keras.random.normal(ops.shape(mean), seed=seed_generator)
            z = mean + ops.exp(0.5 * log_var) * noise
        decoder_input = model._decoder_input(z)
        memory, decoder_state = learned_prior._convlstm_step(
            model.decoder_lstm, decoder_input, decoder_state
        )
        probabilities = ops.sigmoid(model._decode_frames(decoder_input, memory))
        frames.append(probabilities)
        previous = model._embed(probabilities)
    return ops.convert_to_numpy(ops.concatenate(frames, axis=1))


def main(num_clips=100):
    model = keras.saving.load_model(SHIPPED, safe_mode=True)
    frames = model.data_shape[0]
    data = dict(num_frames=frames)
    train = MovingDigits.scaled(32, split="train", seed=11, **data).clips(4000)
    mean, log_var = (ops.convert_to_numpy(t)[:, 0] for t in model.encode(train))
    rng = np.random.default_rng(0)
    first = (mean + np.exp(0.5 * log_var) * rng.normal(size=mean.shape)).astype(
        "float32"
    )
    real = MovingDigits.scaled(32, split="test", seed=1, **data).clips(num_clips)
    other = MovingDigits.scaled(32, split="test", seed=2, **data).clips(num_clips)
    classifier = load_digit_classifier()
    reference = generation_statistics(other)
    brightness = other.mean(axis=(0, 2, 3, 4))

    candidates = {
        "p(z_0) (model.sample)": np.asarray(model.sample(num_clips, seed=0)),
        "posterior of real frame 0": rollout(model, first[:num_clips], frames),
    }
    for k in (10, 50):
        mixture = GaussianMixture(k, covariance_type="full", random_state=0)
        # float64: the float32 posterior draws give covariances that are not PSD
        draws = mixture.fit(first.astype("float64")).sample(num_clips)[0]
        candidates[f"mixture of {k} Gaussians"] = rollout(  # draws come sorted
            model, draws[rng.permutation(num_clips)].astype("float32"), frames
        )
    print(
        f"{num_clips} samples against {num_clips} held-out clips; z_0 fitted on "
        "4,000 training clips\n"
    )
    print(
        "| z_0 drawn from | x real | ink | frame corr above real | frame FID | "
        "identity | brightness, frame 0 / last |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, clips in candidates.items():
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


if __name__ == "__main__":
    main()
