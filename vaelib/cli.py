"""Command line: `python -m vaelib train|evaluate|data ...`.

    python -m vaelib train --model mlp --data digits --epochs 30 --out runs/mlp
    python -m vaelib evaluate --model-path runs/mlp/model.keras --data digits
    python -m vaelib data moving-digits --clips 1000 --out data/moving.npz

`train` writes `model.keras` and `metrics.json` to `--out` and prints the
held-out metrics; `evaluate` prints the same table for a saved model. Bad
arguments, unreadable files and unusable data exit with status 2 and a one-line
reason.
"""

import argparse
import json
import os
import pathlib
import shlex
import sys
import time

MODELS = ("mlp", "conv")
DATA = ("digits",)
SOURCES = ("auto", "tfds", "keras", "sklearn")


class UsageError(Exception):
    """A problem with the command line or its files: exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(convert, minimum, description):
    """An argparse type: `convert(text)`, at least `minimum`, else a one-line error."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not value >= minimum:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, "a positive integer")
_non_negative_float = _number(float, 0, "a number >= 0")


def build_parser():
    parser = _Parser(prog="python -m vaelib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    train = commands.add_parser("train", help="train a VAE and report held-out metrics")
    train.add_argument("--model", choices=MODELS, default="mlp")
    train.add_argument("--data", choices=DATA, default="digits")
    train.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="digits source: MNIST through TFDS or Keras, or scikit-learn's digits",
    )
    train.add_argument("--epochs", type=_positive_int, default=30)
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--latent-dim", type=_positive_int, default=16)
    train.add_argument("--beta", type=_non_negative_float, default=1.0)
    train.add_argument("--learning-rate", type=_non_negative_float, default=1e-3)
    train.add_argument(
        "--iwae-k",
        type=_positive_int,
        default=100,
        help="importance samples for the held-out log-likelihood bound",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        help="directory for model.keras and metrics.json",
    )

    evaluate = commands.add_parser(
        "evaluate", help="print held-out metrics of a saved VAE"
    )
    evaluate.add_argument("--model-path", required=True, type=pathlib.Path)
    evaluate.add_argument("--data", choices=DATA, default="digits")
    evaluate.add_argument("--source", choices=SOURCES, default="auto")
    evaluate.add_argument("--iwae-k", type=_positive_int, default=100)
    evaluate.add_argument("--seed", type=int, default=0)
    data = commands.add_parser("data", help="write a data set to disk")
    data.add_argument("name", choices=("moving-digits",))
    data.add_argument("--clips", type=_positive_int, required=True)
    data.add_argument("--split", choices=("train", "test"), default="train")
    data.add_argument("--frame-size", type=_positive_int, default=64)
    data.add_argument("--num-frames", type=_positive_int, default=20)
    data.add_argument("--num-digits", type=_positive_int, default=2)
    data.add_argument("--digit-size", type=_positive_int, default=28)
    data.add_argument("--speed", type=_non_negative_float, default=3.6)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", required=True, type=pathlib.Path, help="a .npz file")
    return parser


def _load_data(args):
    from vaelib.data import load_digits_images

    train = load_digits_images("train", source=args.source)
    test = load_digits_images("test", source=args.source)
    return train, test


def format_metrics(metrics):
    rows = [
        (name, value) for name, value in metrics.items() if isinstance(value, float)
    ]
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{'held-out metric':<{width}}  value (nats per image; bits_per_dim in bits)"
    ]
    lines += [f"{name:<{width}}  {value:10.3f}" for name, value in rows]
    return "\n".join(lines)


def _train(args):
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(
            f"cannot write to --out {args.out}: {error.strerror}"
        ) from None

    import keras

    from vaelib.metrics import evaluate_images
    from vaelib.models import conv_vae, mlp_vae

    keras.utils.set_random_seed(args.seed)
    train, test = _load_data(args)
    build = {"mlp": mlp_vae, "conv": conv_vae}[args.model]
    model = build(
        input_shape=train.images.shape[1:],
        latent_dim=args.latent_dim,
        beta=args.beta,
        seed=args.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    start = time.perf_counter()
    history = model.fit(
        train.images,
        epochs=args.epochs,
        batch_size=args.batch_size,
        shuffle=True,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - start
    if len(history.epoch) < args.epochs:
        print(
            f"training stopped at epoch {len(history.epoch)}: the loss became NaN",
            file=sys.stderr,
        )
        return 1

    model.save(args.out / "model.keras")
    metrics = evaluate_images(model, test.images, args.iwae_k, seed=args.seed)
    print(
        f"data: {train.source} digits, {len(train.images)} train / "
        f"{len(test.images)} test images; trained in {seconds:.1f} s"
    )
    print(format_metrics(metrics))
    metrics.update(
        {
            "model": args.model,
            "data": args.data,
            "data_source": train.source,
            "epochs": args.epochs,
            "train_seconds": round(seconds, 1),
            "backend": keras.backend.backend(),
            "command": "python -m vaelib " + shlex.join(sys.argv[1:]),
        }
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out / 'model.keras'} and {args.out / 'metrics.json'}")
    return 0


def _evaluate(args):
    if not args.model_path.is_file():
        raise UsageError(f"no such model file: {args.model_path}")
    import keras

    import vaelib.models  # noqa: F401 - registers the classes for loading
    from vaelib.metrics import evaluate_images

    try:
        model = keras.saving.load_model(args.model_path)
    except Exception as error:  # noqa: BLE001 - any load failure is the file's fault
        raise UsageError(f"cannot load {args.model_path}: {error}") from None
    _, test = _load_data(args)
    print(f"data: {test.source} digits, {len(test.images)} test images")
    print(
        format_metrics(evaluate_images(model, test.images, args.iwae_k, seed=args.seed))
    )
    return 0


def _data(args):
    import numpy as np

    from vaelib.data import MovingDigits

    if args.out.suffix != ".npz":
        raise UsageError(f"--out must name a .npz file, got {args.out}")
    clips = MovingDigits(
        frame_size=args.frame_size,
        num_digits=args.num_digits,
        num_frames=args.num_frames,
        digit_size=args.digit_size,
        speed=args.speed,
        split=args.split,
        seed=args.seed,
    )
    info = clips.metadata(args.clips)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            args.out,
            clips=clips.clips_uint8(args.clips),
            labels=info["labels"],
            velocity=info["velocity"].astype("float32"),
            start_position=info["start_position"].astype("float32"),
        )
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror}") from None
    print(
        f"wrote {args.clips} {args.split} clips {clips.clip_shape} (uint8, 0..255) "
        f"from {clips.digit_source} digits to {args.out}"
    )
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        commands = {"train": _train, "evaluate": _evaluate, "data": _data}
        return commands[args.command](args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"python -m vaelib {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
