"""Trains the learned-prior video VAE on moving digits within a time budget.

    python benchmarks/train_learned_prior.py --minutes 20 \\
        --out /work/runs/learned-prior-moving-mnist

Each epoch draws fresh training clips (`MovingDigits.scaled(frame_size,
split="train")`, clips `epoch * clips_per_epoch` onwards, so no clip is seen
twice), ramps the KL weight `beta` linearly from 0 to `--beta` (1, the
ELBO, by default) over `--warmup-epochs` (against posterior collapse), and
follows a cosine learning-rate schedule over the time budget. Every
`--report-every` epochs it prints the KL per frame on held-out clips and the
statistics of a few samples (`vaelib.metrics.generation_statistics`), the
signals that show collapse (KL near 0 after frame 0) or black samples early.

At the end it writes `model.keras` and `metrics.json` (this command, the
training time, the held-out ELBO and KL per frame, and the generation
statistics of 64 samples beside those of real held-out clips) to `--out`.
"""

import argparse
import json
import math
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import generation_statistics  # noqa: E402
from vaelib.models import LearnedPriorVAE  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame-size", type=int, default=32)
    parser.add_argument("--num-frames", type=int, default=20)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--filters", default="32,64")
    parser.add_argument("--lstm-filters", type=int, default=64)
    parser.add_argument("--decoder-convs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clips-per-epoch", type=int, default=512)
    parser.add_argument("--warmup-epochs", type=int, default=10)
    parser.add_argument("--report-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--beta",
        type=float,
        default=1.0,
        help="KL weight after the warm-up; below 1 the posterior keeps more "
        "detail per frame (sharper frames) at the cost of the ELBO",
    )
    parser.add_argument("--init-weights", default=None)
    parser.add_argument(
        "--train-only-prior",
        action="store_true",
        help="freeze the encoder (and the frame embedding it shares with the "
        "prior) and the decoder: only the prior's ConvLSTM and head learn, "
        "so only the KL term moves",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    data = dict(num_frames=args.num_frames)
    train = MovingDigits.scaled(args.frame_size, split="train", seed=args.seed, **data)
    held_out = MovingDigits.scaled(args.frame_size, split="test", seed=1, **data)
    test = held_out.clips(64)
    model = LearnedPriorVAE(
        input_shape=train.clip_shape,
        latent_dim=args.latent_dim,
        filters=tuple(int(f) for f in args.filters.split(",")),
        lstm_filters=args.lstm_filters,
        decoder_convs=args.decoder_convs,
        seed=args.seed,
        beta=0.0 if args.warmup_epochs else args.beta,
    )
    if args.init_weights:
        model.set_weights(
            keras.saving.load_model(args.init_weights, safe_mode=True).get_weights()
        )
    if args.train_only_prior:
        model.encoder.trainable = False
        model.decoder.trainable = False
    optimizer = keras.optimizers.Adam(args.learning_rate, clipnorm=100.0)
    # XLA is 1.8x slower on TensorFlow's CPU kernels; JAX needs it (its
    # non-jitted training step is eager and receives tf.data tensors).
    jit = keras.backend.backend() != "tensorflow"
    model.compile(optimizer=optimizer, jit_compile=jit)
    print(f"{model.count_params():,} parameters, {train.digit_source} digits")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = args.minutes * 60
    start = time.perf_counter()
    epoch = 0
    last = 0.0
    while time.perf_counter() - start < budget:
        fraction = (time.perf_counter() - start) / budget
        optimizer.learning_rate.assign(
            args.learning_rate * 0.5 * (1 + math.cos(math.pi * fraction))
        )
        ramp = min(1.0, epoch / args.warmup_epochs) if args.warmup_epochs else 1.0
        beta = args.beta * ramp
        model.beta.assign(beta)
        clips = train.clips(args.clips_per_epoch, start=epoch * args.clips_per_epoch)
        history = model.fit(clips, batch_size=args.batch_size, epochs=1, verbose=0)
        logs = {k: v[-1] for k, v in history.history.items()}
        elapsed = time.perf_counter() - start
        frames_per_second = clips.shape[0] * clips.shape[1] / (elapsed - last)
        last = elapsed
        print(
            f"epoch {epoch:3d} {elapsed:6.0f}s {frames_per_second:7.0f} frames/s "
            f"beta {beta:.2f} "
            f"loss {logs['loss']:.1f} rec {logs['reconstruction']:.1f} "
            f"kl {logs['kl']:.1f}",
            flush=True,
        )
        if epoch % args.report_every == 0:
            # A checkpoint at every report: a run cut short still leaves a model.
            model.save(out / "model.keras")
            kl = model.kl_per_frame(test[:16]).mean(axis=0)
            stats = generation_statistics(model.sample(16, seed=epoch))
            print(
                "   KL/frame " + " ".join(f"{v:.1f}" for v in kl[:6]) + " ... "
                f"{kl[-1]:.1f} | samples "
                + " ".join(f"{k} {v:.3f}" for k, v in stats.items()),
                flush=True,
            )
        epoch += 1
    seconds = time.perf_counter() - start

    model.beta.assign(1.0)
    model.save(out / "model.keras")
    # Shipped without the optimizer's state (a third of the size).
    keras.saving.load_model(out / "model.keras", compile=False).save(
        out / "model.keras"
    )
    elbo = float(np.mean(model.elbo(test)))
    kl = model.kl_per_frame(test).mean(axis=0)
    metrics = {
        "model": "learned-prior",
        "data": f"MovingDigits.scaled({args.frame_size}, num_frames="
        f"{args.num_frames}, split='train', seed={args.seed}), fresh clips every "
        f"epoch ({train.digit_source} digits)",
        "epochs": epoch,
        "train_clips": epoch * args.clips_per_epoch,
        "train_seconds": round(seconds, 1),
        "backend": keras.backend.backend(),
        "parameters": model.count_params(),
        "held_out_negative_elbo_per_clip": -elbo,
        "held_out_kl_per_frame": [round(float(v), 2) for v in kl],
        "sample_statistics": generation_statistics(model.sample(64, seed=0)),
        "real_statistics": generation_statistics(test),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
