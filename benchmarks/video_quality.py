"""Video VAEs against the copy-last-frame baseline, after a fixed training budget.

    python benchmarks/video_quality.py                       # 32x32, a few minutes
    python benchmarks/video_quality.py --frame-size 64 --clips 10000 --epochs 50   # GPU

Trains `framewise_vae`, `convlstm_vae` and `convlstm_predictor` (10 context
frames -> 10 predicted) on moving digits (train digits only) and evaluates on
held-out clips (test digits only):

- reconstruction: PSNR and SSIM (`vaelib.metrics`, Wang et al. 2004) of the
  posterior-mean reconstruction of all 20 frames, and the KL per frame;
- prediction of frames 11-20 from frames 1-10: per-frame BCE (nats), PSNR,
  SSIM, and "MSE per frame" as the video-prediction literature reports it
  (squared error summed over a frame's pixels, values in [0, 1], averaged over
  predicted frames). Copy-last-frame repeats frame 10.

The models shipped in `data/pretrained/` (trained by the command line for
much longer; commands in their `metrics.json`) are evaluated on the same
held-out clips and printed as the last rows, when their frame size matches.

Beside the table, the published reference for 10 -> 10 prediction on Moving
MNIST: a ConvLSTM at 29.8 MSE per frame after 200 epochs in the OpenSTL
benchmark (Tan et al., 2023), on the official 64x64 test file. Our clips
follow the same generator from MNIST's test digits (set `VAELIB_MNIST`) but
are not that file, and our training budget is printed next to the number:
compare at `--frame-size 64` only, and as an order of magnitude.

    python benchmarks/video_quality.py --frame-size 64 --models predictor \\
        --clips 2000 --epochs 10

Goals: the ConvLSTM VAE reconstructs at 25 dB or more, and the predictor
beats copy-last-frame on prediction.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.metrics import evaluate_prediction, evaluate_video  # noqa: E402
from vaelib.models import (  # noqa: E402
    convlstm_predictor,
    convlstm_vae,
    copy_last_frame,
    framewise_vae,
    predict_frames,
)

PRETRAINED = pathlib.Path(__file__).resolve().parents[1] / "data" / "pretrained"
PRETRAINED_MODELS = ("convlstm-moving-mnist", "predictor-moving-mnist")
# OpenSTL benchmark (Tan et al., 2023), Moving MNIST 64x64, 10 -> 10, ConvLSTM.
OPENSTL_CONVLSTM_MSE = 29.8
OPENSTL_EPOCHS = 200


def evaluate(name, model, test, seconds):
    """One table row: reconstruction (and, for a predictor, prediction) metrics."""
    context, future = test[:, :10], test[:, 10:]
    report = evaluate_video(model, test)
    prediction = None
    frames = slice(None)
    if model.name == "convlstm_predictor":
        prediction = evaluate_prediction(future, predict_frames(model, context))
        frames = slice(0, 10)  # it reconstructs only what it sees
    report = {k: float(v[frames].mean()) for k, v in report.items() if k != "mean"}
    return name, report, prediction, seconds


def pretrained_rows(test):
    """Rows for the shipped video models whose clips have the shape of `test`."""
    rows = []
    for folder in PRETRAINED_MODELS:
        path = PRETRAINED / folder
        if not (path / "model.keras").is_file():
            continue
        model = keras.saving.load_model(path / "model.keras", safe_mode=True)
        if tuple(model.data_shape) != test.shape[1:]:
            print(f"  {folder}: trained on {model.data_shape}, not evaluated here")
            continue
        metrics = json.loads((path / "metrics.json").read_text())
        seconds = metrics.get("total_train_seconds", metrics["train_seconds"])
        rows.append(evaluate(f"pretrained {metrics['model']}", model, test, seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame-size", type=int, default=32)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument(
        "--lstm-filters", type=int, default=None, help="32 at 32x32, else 64"
    )
    parser.add_argument(
        "--decoder-convs", type=int, default=1, help="convolutions per decoder scale"
    )
    parser.add_argument(
        "--skip",
        action="store_true",
        help="concatenate each ConvLSTM's input to its output",
    )
    parser.add_argument(
        "--models",
        default="framewise,convlstm,predictor",
        help="which of framewise,convlstm,predictor to train",
    )
    args = parser.parse_args()
    chosen = set(args.models.split(","))
    if not chosen <= {"framewise", "convlstm", "predictor"}:
        parser.error(f"unknown --models {args.models}")

    data = dict(num_frames=20)
    train = MovingDigits.scaled(args.frame_size, split="train", seed=0, **data)
    digit_source = train.digit_source
    train = train.clips(args.clips)
    test = MovingDigits.scaled(args.frame_size, split="test", seed=1, **data)
    test = test.clips(args.test_clips)
    shape = train.shape[1:]
    filters = (16, 32) if args.frame_size <= 32 else (16, 32, 64)
    lstm = args.lstm_filters or (32 if args.frame_size <= 32 else 64)
    sizes = dict(
        latent_dim=args.latent_dim,
        filters=filters,
        decoder_convs=args.decoder_convs,
        seed=0,
    )
    context, future = test[:, :10], test[:, 10:]

    rows = [
        (
            "copy last frame",
            None,
            evaluate_prediction(future, copy_last_frame(context, 10)),
            0,
        )
    ]
    builders = [
        (
            "framewise",
            "framewise_vae",
            lambda: framewise_vae(shape, **sizes),
        ),
        (
            "convlstm",
            "convlstm_vae",
            lambda: convlstm_vae(shape, lstm_filters=lstm, skip=args.skip, **sizes),
        ),
        (
            "predictor",
            "convlstm_predictor 10->10",
            lambda: convlstm_predictor(
                shape, 10, lstm_filters=lstm, skip=args.skip, **sizes
            ),
        ),
    ]
    for key, name, build in builders:
        if key not in chosen:
            continue
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        start = time.perf_counter()
        model.fit(train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        rows.append(evaluate(name, model, test, seconds))
        print(f"  trained {name} in {seconds:.0f} s", flush=True)
    rows.extend(pretrained_rows(test))

    print(
        f"\nMoving digits ({digit_source} digits), 20 frames of "
        f"{args.frame_size}x{args.frame_size}, "
        f"{args.clips} train / {args.test_clips} held-out clips, {args.epochs} epochs, "
        f"backend {keras.backend.backend()}\n"
        "reconstruction: posterior mean, all frames (the predictor: its 10 context "
        "frames); prediction: frames 11-20 from frames 1-10; pretrained rows: "
        "data/pretrained, trained longer on more clips (their metrics.json)\n"
    )
    print(
        f"| {'model':<26} | {'rec PSNR':>8} | {'rec SSIM':>8} | {'KL/frame':>8} | "
        f"{'pred BCE':>8} | {'pred PSNR':>9} | {'pred SSIM':>9} | {'MSE/frame':>9} "
        f"| {'train s':>7} |"
    )
    print("|" + "|".join("-" * w for w in (28, 10, 10, 10, 10, 11, 11, 11, 9)) + "|")
    for name, report, prediction, seconds in rows:
        rec = (
            f"{report['psnr']:8.2f} | {report['ssim']:8.3f} | {report['kl']:8.1f}"
            if report
            else f"{'-':>8} | {'-':>8} | {'-':>8}"
        )
        pred = (
            f"{prediction['bce']:8.1f} | {prediction['psnr']:9.2f} | "
            f"{prediction['ssim']:9.3f} | {prediction['mse_per_frame']:9.1f}"
            if prediction
            else f"{'-':>8} | {'-':>9} | {'-':>9} | {'-':>9}"
        )
        print(f"| {name:<26} | {rec} | {pred} | {seconds:7.0f} |")
    predictors = [row for row in rows if row[2] and row[0] != "copy last frame"]
    comparable = args.frame_size == 64 and digit_source != "sklearn"
    print(
        f"\nPublished reference, 10 -> 10 on Moving MNIST 64x64: ConvLSTM "
        f"{OPENSTL_CONVLSTM_MSE} MSE/frame after {OPENSTL_EPOCHS} epochs (OpenSTL "
        "benchmark, official test file)"
        + (
            "; ours above after "
            + ", ".join(f"{row[0]}: {row[3] / 60:.0f} min" for row in predictors)
            + f" ({args.clips} clips x {args.epochs} epochs for the rows trained here)"
            if comparable
            else f"; not comparable with this run ({args.frame_size}x"
            f"{args.frame_size}, {digit_source} digits)"
        )
    )
    reconstructions = [row for row in rows if row[1] and "predictor" not in row[0]]
    if reconstructions:
        best = max(reconstructions, key=lambda row: row[1]["psnr"])
        print(
            f"Goal, reconstruction PSNR >= 25 dB: best {best[0]} at "
            f"{best[1]['psnr']:.2f} dB "
            f"({'met' if best[1]['psnr'] >= 25 else 'not met'})"
        )


if __name__ == "__main__":
    main()
