"""Command line: `python -m vaelib train|evaluate|generate|grade|data ...`.

    python -m vaelib train --model mlp --data digits --epochs 30 --out runs/mlp
    python -m vaelib train --model convlstm --data moving-digits --epochs 1 --out runs/v
    python -m vaelib evaluate --model-path runs/mlp/model.keras --data digits
    python -m vaelib generate --model-path runs/v/model.keras --out samples.gif
    python -m vaelib data moving-digits --clips 1000 --out data/moving.npz
    python -m vaelib grade submissions/   # run each notebook, print a score table

`train` runs `vaelib.training.fit_vae` (checkpoints, `--resume`, CSV and
TensorBoard logs, KL annealing, mixed precision, distribution) and writes
`model.keras` and `metrics.json` to `--out`, then prints the held-out metrics;
`evaluate` prints the same table for a saved model; `generate` writes prior
samples as a PNG grid or an animated GIF. Bad arguments, unreadable files and
unusable data exit with status 2 and a one-line reason.
"""

import argparse
import json
import os
import pathlib
import shlex
import sys
from typing import NamedTuple

IMAGE_MODELS = ("mlp", "conv")
VIDEO_MODELS = ("framewise", "convlstm", "predictor")
MODELS = IMAGE_MODELS + VIDEO_MODELS
DATA = ("digits", "mnist", "moving-digits")
SOURCES = ("auto", "mnist-file", "keras", "tfds", "sklearn")
BINARIZATIONS = ("dynamic", "none")
PRECISIONS = ("off", "auto", "float16", "bfloat16")


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


def _int_list(text):
    """An argparse type: comma-separated positive integers, e.g. "32,64"."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 32,64, got {text!r}"
        )
    return values


_non_negative_float = _number(float, 0, "a number >= 0")


def _add_data_arguments(parser):
    parser.add_argument("--data", choices=DATA, default="digits")
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="digits source: MNIST from $VAELIB_MNIST, Keras or TFDS, or "
        "scikit-learn's digits",
    )
    parser.add_argument(
        "--binarize",
        choices=BINARIZATIONS,
        default="dynamic",
        help="images: train on pixels drawn afresh as 0/1 every epoch and measure "
        "on the statically binarised test set (dynamic, the default: likelihoods "
        "comparable with the literature), or keep grey pixels (none)",
    )
    video = parser.add_argument_group("moving digits")
    video.add_argument("--frame-size", type=_positive_int, default=64)
    video.add_argument("--num-frames", type=_positive_int, default=20)
    video.add_argument(
        "--clips", type=_positive_int, default=1000, help="training clips"
    )
    video.add_argument(
        "--test-clips", type=_positive_int, default=200, help="held-out clips"
    )


def build_parser():
    parser = _Parser(prog="python -m vaelib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    train = commands.add_parser("train", help="train a VAE and report held-out metrics")
    train.add_argument("--model", choices=MODELS, default="mlp")
    _add_data_arguments(train)
    train.add_argument("--epochs", type=_positive_int, default=30)
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="64 for images, 16 for clips",
    )
    train.add_argument(
        "--latent-dim",
        type=_positive_int,
        default=None,
        help="16 for images; channels of the per-frame map for video: 8",
    )
    train.add_argument(
        "--filters",
        type=_int_list,
        default=None,
        help="filters of the strided convolutions, e.g. 32,64 (conv and video "
        "models; default 32,64 for conv, 16,32 for clips up to 32x32, else 16,32,64)",
    )
    train.add_argument(
        "--hidden",
        type=_int_list,
        default=None,
        help="widths of the MLP's hidden layers, encoder order, e.g. 512,256 "
        "(default 512)",
    )
    train.add_argument(
        "--lstm-filters",
        type=_positive_int,
        default=None,
        help="ConvLSTM filters (convlstm, predictor; default 32 up to 32x32, else 64)",
    )
    train.add_argument(
        "--decoder-convs",
        type=_positive_int,
        default=1,
        help="convolutions per resolution in a video decoder (2: sharper frames)",
    )
    train.add_argument(
        "--skip",
        action="store_true",
        help="concatenate each ConvLSTM's input to its output (convlstm, predictor)",
    )
    train.add_argument("--beta", type=_non_negative_float, default=1.0)
    train.add_argument(
        "--kl-anneal",
        choices=("none", "linear", "cyclical"),
        default="none",
        help="raise beta from 0 over the first third of training, or in 4 cycles",
    )
    train.add_argument("--learning-rate", type=_non_negative_float, default=1e-3)
    train.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="cosine: decay the learning rate towards 0 over the epochs",
    )
    train.add_argument(
        "--mixed-precision",
        choices=PRECISIONS,
        default="off",
        help="half-precision compute (auto: float16 on a GPU, off on a CPU)",
    )
    train.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    train.add_argument(
        "--distribute",
        choices=("auto", "none", "mirrored", "multiworker"),
        default="auto",
        help="auto: several workers if TF_CONFIG names them, else all local GPUs",
    )
    train.add_argument(
        "--init-weights",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="start from the weights of a saved model of the same architecture "
        "(model.keras or .weights.h5), e.g. to fine-tune a pretrained one",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out from its last finished epoch",
    )
    train.add_argument(
        "--iwae-k",
        type=_positive_int,
        default=100,
        help="importance samples for the held-out log-likelihood bound (images)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="directory for model.keras, metrics.json, history.csv and logs/ "
        "(default: runs/MODEL-DATA)",
    )

    evaluate = commands.add_parser(
        "evaluate", help="print held-out metrics of a saved VAE"
    )
    evaluate.add_argument("--model-path", required=True, type=pathlib.Path)
    _add_data_arguments(evaluate)
    evaluate.add_argument("--iwae-k", type=_positive_int, default=100)
    evaluate.add_argument("--seed", type=int, default=0)

    generate = commands.add_parser(
        "generate", help="write prior samples of a saved VAE as a PNG or GIF"
    )
    generate.add_argument("--model-path", required=True, type=pathlib.Path)
    generate.add_argument("--num", type=_positive_int, default=16)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        help="a .png (image grid, or frame strips for clips) or .gif (clips)",
    )

    grade = commands.add_parser(
        "grade", help="run every notebook in a folder and print a score table"
    )
    grade.add_argument("folder", type=pathlib.Path)
    grade.add_argument(
        "--timeout", type=_positive_int, default=900, help="seconds per cell"
    )
    grade.add_argument(
        "--csv", type=pathlib.Path, default=None, help="also write the scores here"
    )

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


class Data(NamedTuple):
    train: object
    validation: object
    test: object
    description: str
    source: str


def _moving_digits(args, split, seed):
    from vaelib.data import MovingDigits

    return MovingDigits.scaled(
        args.frame_size, num_frames=args.num_frames, split=split, seed=seed
    )


def load_data(args, with_train=True):
    """Train, validation and test arrays for `--data`, and where they came from."""
    if args.data == "moving-digits":
        if args.frame_size < 16:
            raise UsageError(f"--frame-size must be at least 16, got {args.frame_size}")
        test_maker = _moving_digits(args, "test", 1)
        test = test_maker.clips(args.test_clips)
        train = validation = None
        if with_train:
            train = _moving_digits(args, "train", args.seed).clips(args.clips)
            validation = _moving_digits(args, "train", args.seed + 1_000_003).clips(
                max(16, args.clips // 10)
            )
        description = (
            f"moving digits ({test_maker.digit_source} digits), clips of "
            f"{args.num_frames} frames of {args.frame_size}x{args.frame_size}: "
            f"{args.clips if with_train else 0} train / {args.test_clips} test clips"
        )
        return Data(train, validation, test, description, test_maker.digit_source)

    from vaelib.data import load_digits_images

    source = args.source
    if args.data == "mnist":
        if source == "sklearn":
            raise UsageError("--data mnist cannot use --source sklearn")
    test = load_digits_images("test", source=source)
    if args.data == "mnist" and test.source == "sklearn":
        raise UsageError(
            "MNIST is not available here (no VAELIB_MNIST file, no Keras cache, no "
            "TFDS copy, no download); use --data digits, which falls back to "
            "scikit-learn's digits"
        )
    train = load_digits_images("train", source=test.source) if with_train else None
    validation = None
    if with_train:
        import numpy as np

        order = np.random.default_rng(args.seed).permutation(len(train.images))
        cut = len(order) // 10
        validation = train.images[order[:cut]]
        train_images = train.images[order[cut:]]
    test_images = test.images
    binary = getattr(args, "binarize", "none") == "dynamic"
    if binary:
        from vaelib.data import STATIC_BINARIZATION_SEED, binarize

        test_images = binarize(test_images, seed=STATIC_BINARIZATION_SEED)
        if with_train:
            validation = binarize(validation, seed=STATIC_BINARIZATION_SEED + 1)
    description = (
        f"{test.description}: "
        f"{len(train_images) if with_train else 0} train / "
        f"{0 if validation is None else len(validation)} validation / "
        f"{len(test.images)} test images"
        + (
            ", train binarised afresh every epoch, validation and test statically "
            f"binarised (seeds {STATIC_BINARIZATION_SEED + 1}, "
            f"{STATIC_BINARIZATION_SEED})"
            if binary
            else ", grey pixels (no binarisation)"
        )
    )
    return Data(
        train_images if with_train else None,
        validation,
        test_images,
        description,
        test.source,
    )


def format_metrics(metrics, unit="nats per image; bits_per_dim in bits"):
    rows = [
        (name, value) for name, value in metrics.items() if isinstance(value, float)
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'held-out metric':<{width}}  value ({unit})"]
    lines += [f"{name:<{width}}  {value:10.3f}" for name, value in rows]
    return "\n".join(lines)


def format_video_report(report):
    """The per-frame table of `evaluate_video`, then its means."""
    frames = len(report["psnr"])
    lines = [f"{'frame':>5}  {'BCE':>8}  {'PSNR dB':>8}  {'SSIM':>6}  {'KL':>7}"]
    for t in range(frames):
        lines.append(
            f"{t + 1:>5}  {report['bce'][t]:8.2f}  {report['psnr'][t]:8.2f}  "
            f"{report['ssim'][t]:6.3f}  {report['kl'][t]:7.2f}"
        )
    mean = report["mean"]
    lines.append(
        f"{'mean':>5}  {mean['bce']:8.2f}  {mean['psnr']:8.2f}  {mean['ssim']:6.3f}  "
        f"{mean['kl']:7.2f}"
    )
    return "\n".join(lines)


def _build_model(args, data_shape):
    model = _build_architecture(args, data_shape)
    model.beta.assign(args.beta)
    if args.init_weights is not None:
        model.build((None,) + tuple(data_shape))
        try:
            model.load_weights(args.init_weights)
        except ValueError as error:
            raise UsageError(
                f"--init-weights {args.init_weights} does not fit this --model "
                f"and its sizes (same --filters, --lstm-filters, --decoder-convs, "
                f"--skip, --latent-dim as the saved model?): {error}"
            ) from None
    return model


def _build_architecture(args, data_shape):
    from vaelib.models import (
        conv_vae,
        convlstm_predictor,
        convlstm_vae,
        framewise_vae,
        mlp_vae,
    )

    if args.model in VIDEO_MODELS:
        small = args.frame_size <= 32
        common = dict(
            input_shape=data_shape,
            latent_dim=args.latent_dim or 8,
            filters=args.filters or ((16, 32) if small else (16, 32, 64)),
            decoder_convs=args.decoder_convs,
            seed=args.seed,
        )
        if args.model == "framewise":
            return framewise_vae(**common)
        lstm_filters = args.lstm_filters or (32 if small else 64)
        recurrent = dict(lstm_filters=lstm_filters, skip=args.skip, **common)
        if args.model == "convlstm":
            return convlstm_vae(**recurrent)
        return convlstm_predictor(context_frames=args.num_frames // 2, **recurrent)
    if args.model == "conv":
        return conv_vae(
            input_shape=data_shape,
            latent_dim=args.latent_dim or 16,
            filters=args.filters or (32, 64),
            seed=args.seed,
        )
    return mlp_vae(
        input_shape=data_shape,
        latent_dim=args.latent_dim or 16,
        hidden=args.hidden or (512,),
        seed=args.seed,
    )


def _check_model_and_data(args):
    video_data = args.data == "moving-digits"
    if (args.model in VIDEO_MODELS) != video_data:
        wanted = (
            "--data moving-digits"
            if args.model in VIDEO_MODELS
            else ("--data digits or --data mnist")
        )
        raise UsageError(f"--model {args.model} needs {wanted}")
    if args.filters is not None and args.model == "mlp":
        raise UsageError("--filters applies to conv and video models, not mlp")
    if args.lstm_filters is not None and args.model not in ("convlstm", "predictor"):
        raise UsageError("--lstm-filters applies to --model convlstm or predictor")
    if args.skip and args.model not in ("convlstm", "predictor"):
        raise UsageError("--skip applies to --model convlstm or predictor")
    if args.decoder_convs != 1 and args.model not in VIDEO_MODELS:
        raise UsageError("--decoder-convs applies to the video models")
    if args.model == "predictor" and args.num_frames < 2:
        raise UsageError("--model predictor needs --num-frames of at least 2")


def _held_out_metrics(model, data, args):
    """Held-out metrics as a flat dict of floats, and the table to print."""
    from vaelib.metrics import (
        evaluate_images,
        evaluate_prediction,
        evaluate_video,
    )

    if data.test.ndim == 4:
        metrics = evaluate_images(model, data.test, args.iwae_k, seed=args.seed)
        return metrics, format_metrics(metrics)
    report = evaluate_video(model, data.test)
    metrics = {f"reconstruction_{k}": v for k, v in report["mean"].items()}
    table = "reconstruction of held-out clips, posterior mean\n" + format_video_report(
        report
    )
    if getattr(model, "name", "") == "convlstm_predictor":
        from vaelib.models import copy_last_frame, predict_frames

        context = args.num_frames // 2
        target = data.test[:, context:]
        ours = evaluate_prediction(
            target, predict_frames(model, data.test[:, :context])
        )
        baseline = evaluate_prediction(
            target, copy_last_frame(data.test[:, :context], args.num_frames - context)
        )
        metrics.update({f"prediction_{k}": v for k, v in ours.items()})
        metrics.update({f"copy_last_frame_{k}": v for k, v in baseline.items()})
        table += (
            f"\n\nprediction of frames {context + 1}-{args.num_frames} from frames "
            f"1-{context}\n{'':<16}  {'BCE':>8}  {'PSNR dB':>8}  {'SSIM':>6}  "
            f"{'MSE/frame':>9}"
        )
        for name, row in (("predictor", ours), ("copy last frame", baseline)):
            table += (
                f"\n{name:<16}  {row['bce']:8.2f}  {row['psnr']:8.2f}  "
                f"{row['ssim']:6.3f}  {row['mse_per_frame']:9.2f}"
            )
    return metrics, table


def _train(args):
    _check_model_and_data(args)
    if args.out is None:
        args.out = pathlib.Path("runs", f"{args.model}-{args.data}")
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

    from vaelib import training

    done = training.backup_epoch(args.out)
    if done is not None and not args.resume:
        raise UsageError(
            f"{args.out} holds a run interrupted after epoch {done}: "
            "add --resume to continue it, or choose another --out"
        )
    if args.resume and done is None:
        print(f"nothing to resume in {args.out}; starting from epoch 1")

    if args.init_weights is not None and not args.init_weights.is_file():
        raise UsageError(f"no such --init-weights file: {args.init_weights}")

    keras.utils.set_random_seed(args.seed)
    precision = training.set_mixed_precision(args.mixed_precision)
    strategy = training.get_strategy(args.distribute)
    data = load_data(args)
    print(f"data: {data.description}")
    video = data.train.ndim == 5
    batch_size = args.batch_size or (16 if video else 64)
    train_data = data.train
    if not video and args.binarize == "dynamic":
        from vaelib.data import dynamically_binarized

        train_data = dynamically_binarized(data.train, batch_size, seed=args.seed)
    result = training.fit_vae(
        lambda: _build_model(args, data.train.shape[1:]),
        train_data,
        data.validation,
        epochs=args.epochs,
        batch_size=batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        out_dir=args.out if training.is_chief() else args.out / f"worker-{os.getpid()}",
        strategy=strategy,
        kl_anneal=None if args.kl_anneal == "none" else args.kl_anneal,
        jit_compile=args.jit,
        resume=args.resume,
    )
    model = result.model
    if not training.is_chief():
        return 0
    model.save(args.out / "model.keras")
    metrics, table = _held_out_metrics(model, data, args)
    print(
        f"trained epochs {result.initial_epoch + 1}-{args.epochs} in "
        f"{result.seconds:.1f} s"
    )
    print(table)
    history = result.history
    rate = history.get("frames_per_second" if video else "examples_per_second")
    metrics.update(
        {
            "model": args.model,
            "data": args.data,
            "data_source": data.source,
            "data_description": data.description,
            "epochs": args.epochs,
            "resumed_from_epoch": result.initial_epoch,
            "init_weights": args.init_weights and str(args.init_weights),
            "train_seconds": round(result.seconds, 1),
            ("train_frames_per_second" if video else "train_examples_per_second"): (
                round(float(rate[-1]), 1) if rate else None
            ),
            "backend": keras.backend.backend(),
            "dtype_policy": precision,
            "command": "python -m vaelib " + shlex.join(sys.argv[1:]),
        }
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out / 'model.keras'} and {args.out / 'metrics.json'}")
    return 0


def _load_model(path):
    if not path.is_file():
        raise UsageError(f"no such model file: {path}")
    import keras

    import vaelib.models  # noqa: F401 - registers the classes for loading

    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - any load failure is the file's fault
        raise UsageError(f"cannot load {path}: {error}") from None


def _evaluate(args):
    model = _load_model(args.model_path)
    shape = model.data_shape
    if len(shape) == 4:
        args.num_frames, args.frame_size = shape[0], shape[1]
        if args.data != "moving-digits":
            raise UsageError(
                f"{args.model_path} is a video model: use --data moving-digits"
            )
    elif args.data == "moving-digits":
        raise UsageError(f"{args.model_path} is an image model: use --data digits")
    data = load_data(args, with_train=False)
    print(f"data: {data.description}")
    print(_held_out_metrics(model, data, args)[1])
    return 0


def _generate(args):
    if args.out.suffix not in (".png", ".gif"):
        raise UsageError(f"--out must name a .png or .gif file, got {args.out}")
    model = _load_model(args.model_path)
    import keras
    import matplotlib

    matplotlib.use("Agg")
    from vaelib import viz

    samples = keras.ops.convert_to_numpy(model.sample(args.num, seed=args.seed))
    video = samples.ndim == 5
    if args.out.suffix == ".gif" and not video:
        raise UsageError(f"{args.model_path} makes images: write a .png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".gif":
        viz.save_gif(
            list(samples),
            args.out,
            labels=[f"sample {i + 1}" for i in range(len(samples))],
        )
    else:
        figure = viz.frame_strip(list(samples)) if video else viz.image_grid(samples)
        figure.savefig(args.out, dpi=120, bbox_inches="tight")
    print(f"wrote {args.num} prior samples of {args.model_path} to {args.out}")
    return 0


def _grade(args):
    if not args.folder.is_dir():
        raise UsageError(f"no such folder: {args.folder}")
    from vaelib.checks import format_grades, grade_folder

    grades = grade_folder(args.folder, timeout=args.timeout)
    print(format_grades(grades))
    if args.csv is not None:
        import csv

        names = list(dict.fromkeys(n for g in grades for n in g.checks))
        with args.csv.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["notebook", *names, "score", "out_of"])
            for g in grades:
                passed = [int(g.checks[n][0]) if n in g.checks else "" for n in names]
                writer.writerow([g.notebook, *passed, g.score, len(g.checks)])
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
        commands = {
            "train": _train,
            "evaluate": _evaluate,
            "generate": _generate,
            "grade": _grade,
            "data": _data,
        }
        return commands[args.command](args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"python -m vaelib {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
