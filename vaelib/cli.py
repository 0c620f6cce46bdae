"""Command line: `python -m vaelib <command>`, one for each job below.

    python -m vaelib train --model mlp --data digits --epochs 30 --out runs/mlp
    python -m vaelib train --model convlstm --data moving-digits --epochs 1 --out runs/v
    python -m vaelib evaluate --model-path runs/mlp/model.keras --data digits
    python -m vaelib generate --model-path runs/v/model.keras --out samples.gif
    python -m vaelib data moving-digits --clips 1000 --out data/moving.npz
    python -m vaelib grade submissions/   # run each notebook, print a score table
    python -m vaelib upgrade-model old/model.keras --out new/model.keras
    python -m vaelib site                 # the course as a website, in _build/site

`train` runs `vaelib.training.fit_vae` (checkpoints, `--resume`, CSV and
TensorBoard logs, KL annealing, mixed precision, distribution) and writes
`model.keras` and `metrics.json` to `--out`, then prints the held-out metrics;
`evaluate` prints the same table for a saved model; `generate` writes prior
samples as a PNG grid or an animated GIF; `upgrade-model` converts a file
saved before the architecture classes; `site` builds the course's website
with Jupyter Book (`vaelib.site`). Bad arguments, unreadable files and
unusable data exit with status 2 and a one-line reason; a diverged training
run exits with status 1 and one line. This module parses and dispatches; the
work is in `vaelib.commands` (one module per seam).
"""

import argparse
import os
import pathlib
import sys

from vaelib.choices import PRECISIONS, STRATEGIES
from vaelib.commands import run
from vaelib.commands.arguments import Parser as _Parser
from vaelib.commands.arguments import RunFailed, UsageError
from vaelib.commands.arguments import int_list as _int_list
from vaelib.commands.arguments import keras_file as _keras_file
from vaelib.commands.arguments import non_negative_float as _non_negative_float
from vaelib.commands.arguments import non_negative_int as _non_negative_int
from vaelib.commands.arguments import positive_float as _positive_float
from vaelib.commands.arguments import positive_int as _positive_int
from vaelib.commands.models import MODELS
from vaelib.data.digits import SOURCES

DATA = ("digits", "mnist", "moving-digits")
BINARIZATIONS = ("dynamic", "none")


def _add_data_arguments(parser):
    parser.add_argument(
        "--data",
        choices=DATA,
        default=None,
        help="default: moving-digits for video models, else digits",
    )
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
    video.add_argument(
        "--frame-size", type=_positive_int, default=None, help="default 64"
    )
    video.add_argument(
        "--num-frames",
        type=_positive_int,
        default=None,
        help="default 20 (17 for causal3d: 1 + a multiple of 4)",
    )
    video.add_argument(
        "--clips", type=_positive_int, default=1000, help="training clips"
    )
    video.add_argument(
        "--test-clips", type=_positive_int, default=200, help="held-out clips"
    )
    video.add_argument(
        "--stochastic",
        action="store_true",
        help="a new random direction at every bounce (Stochastic Moving MNIST, "
        "Denton & Fergus 2018), so the future after a bounce is uncertain",
    )


def build_parser():
    parser = _Parser(prog="python -m vaelib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    train = commands.add_parser("train", help="train a VAE and report held-out metrics")
    train.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="default: mlp, or the architecture of --init-weights",
    )
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
        default=None,
        help="convolutions per resolution in a video decoder (2: sharper frames)",
    )
    train.add_argument(
        "--skip",
        action="store_true",
        help="concatenate each ConvLSTM's input to its output (convlstm, predictor)",
    )
    train.add_argument(
        "--vae",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="latent-flow: the trained causal3d model (.keras) whose latents it "
        "learns; frozen, saved inside the new model",
    )
    train.add_argument(
        "--width",
        type=_positive_int,
        default=64,
        help="latent-flow: channels of the velocity network (default 64)",
    )
    train.add_argument("--beta", type=_non_negative_float, default=1.0)
    train.add_argument(
        "--free-bits",
        type=_non_negative_float,
        default=0.0,
        help="nats per latent channel the loss does not charge (free bits, Kingma "
        "et al. 2016; 0: the plain ELBO), so no channel is squeezed to nothing",
    )
    train.add_argument(
        "--kl-anneal",
        choices=("none", "linear", "cyclical"),
        default="none",
        help="raise beta from 0 over the first third of training, or in 4 cycles",
    )
    train.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=1e-3,
        help="Adam's, default 1e-3",
    )
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
        help=(
            "half-precision compute (auto: bfloat16 on a GPU of compute "
            "capability 8.0 or newer, float16 on older GPUs, off on a CPU)"
        ),
    )
    train.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA-compile the train step (--jit) or not (--no-jit); default: "
        "Keras' rule, on for JAX, off for TensorFlow on a CPU and under a "
        "tf.distribute strategy (which --distribute auto uses on a GPU)",
    )
    train.add_argument(
        "--distribute",
        choices=STRATEGIES,
        default="auto",
        help="auto: several workers if TF_CONFIG names them, else all local GPUs",
    )
    train.add_argument(
        "--init-weights",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="start from a saved model: a .keras file gives the architecture and "
        "sizes too (no size option needed); a .weights.h5 file needs the same "
        "--model and sizes. --beta still applies",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out from its last finished epoch",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run in --out (its model, metrics, logs); without "
        "it, such a run is never touched",
    )
    train.add_argument(
        "--iwae-k",
        type=_positive_int,
        default=100,
        help="importance samples for the held-out log-likelihood bound (images)",
    )
    train.add_argument("--seed", type=_non_negative_int, default=0)
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
    evaluate.add_argument("--model-path", required=True, type=_keras_file)
    _add_data_arguments(evaluate)
    evaluate.add_argument("--iwae-k", type=_positive_int, default=100)
    evaluate.add_argument("--seed", type=_non_negative_int, default=0)

    generate = commands.add_parser(
        "generate", help="write prior samples of a saved VAE as a PNG or GIF"
    )
    generate.add_argument("--model-path", required=True, type=_keras_file)
    generate.add_argument("--num", type=_positive_int, default=16)
    generate.add_argument("--seed", type=_non_negative_int, default=0)
    generate.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        help="a .png (image grid, or frame strips for clips) or .gif (clips)",
    )

    grade = commands.add_parser(
        "grade",
        help="autograde submitted assignments with nbgrader and write grades.csv",
    )
    grade.add_argument(
        "submitted",
        type=pathlib.Path,
        help="a folder <student_id>/<assignment_id>/<assignment_id>.ipynb",
    )
    grade.add_argument("--out", type=pathlib.Path, default=pathlib.Path("grades.csv"))
    grade.add_argument(
        "--course",
        type=pathlib.Path,
        default=None,
        help="the nbgrader course directory (default: course/assignments)",
    )
    grade.add_argument(
        "--seed",
        type=_non_negative_int,
        default=None,
        help="the hidden tests' seed (random)",
    )
    grade.add_argument(
        "--timeout", type=_positive_int, default=600, help="seconds per cell"
    )
    grade.add_argument(
        "--notebook-timeout",
        type=_positive_int,
        default=1800,
        help="seconds per notebook",
    )
    grade.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="where each submission's kernel runs: bwrap (a bubblewrap sandbox: "
        "its own files only, no network, its own processes), none (your rights), "
        "or auto: bwrap when it can run here, else none with a warning",
    )
    grade.add_argument(
        "--workdir",
        type=pathlib.Path,
        default=None,
        help="where executed notebooks, feedback and the gradebook are kept "
        "(default: next to --out)",
    )

    upgrade = commands.add_parser(
        "upgrade-model",
        help="convert an old-format .keras file (a plain VAE) to its architecture "
        "class, checking that the outputs stay identical",
    )
    upgrade.add_argument("path", type=_keras_file)
    upgrade.add_argument(
        "--out",
        type=_keras_file,
        default=None,
        help="where to write the converted model (default: PATH itself, which "
        "needs --overwrite)",
    )
    upgrade.add_argument(
        "--overwrite", action="store_true", help="replace --out (or PATH) if it exists"
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
    data.add_argument("--seed", type=_non_negative_int, default=0)
    data.add_argument(
        "--stochastic",
        action="store_true",
        help="a new random direction at every bounce (Stochastic Moving MNIST)",
    )
    data.add_argument("--out", required=True, type=pathlib.Path, help="a .npz file")
    data.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists"
    )
    site = commands.add_parser(
        "site",
        help="build the course as a website (Jupyter Book) from the stored notebooks",
    )
    site.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("_build/site"),
        help="a new or empty folder, or one an earlier site build wrote "
        "(default: _build/site); the pages are in OUT/_build/html",
    )
    return parser


def _site(args):
    from vaelib import site

    try:
        html = site.build(args.out, quiet=False)
    except site.SiteError as error:
        message = str(error)
        if message.startswith("jupyter-book build failed"):
            raise RunFailed(message) from None
        raise UsageError(message) from None
    print(f"the site is in {html}: open {html / 'index.html'} in a browser")
    return 0


def _grade(args):
    from vaelib import grading

    try:
        result = grading.grade_submissions(
            args.submitted,
            args.out,
            course=args.course or grading.COURSE_DIRECTORY,
            seed=args.seed,
            timeout=args.timeout,
            notebook_timeout=args.notebook_timeout,
            workdir=args.workdir,
            sandbox=args.sandbox,
        )
    except grading.GradingError as error:
        raise UsageError(str(error)) from None
    print(grading.format_table(result["rows"]))
    print(
        f"wrote {args.out}; seed {result['seed']}; executed notebooks, feedback "
        f"and report.json in {result['workdir']}"
    )
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    commands = {
        "train": run.train,
        "evaluate": run.evaluate,
        "generate": run.generate,
        "grade": _grade,
        "data": run.data,
        "upgrade-model": run.upgrade_model,
        "site": _site,
    }
    try:
        return commands[args.command](args)
    except RunFailed as error:
        print(f"python -m vaelib {args.command}: {error}", file=sys.stderr)
        return 1
    except (UsageError, ValueError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"python -m vaelib {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
