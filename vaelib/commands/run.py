"""What each subcommand does, in order: the command line's orchestration."""

import json
import math
import os
import pathlib
import shlex
import sys
import time

import numpy as np

from vaelib.commands import models
from vaelib.commands.arguments import RunFailed, UsageError
from vaelib.commands.data import load_data
from vaelib.commands.report import held_out_metrics


def train(args):
    """`train`: fit a model, save it with its held-out metrics and command."""
    saved = None
    if args.init_weights is not None:
        if not args.init_weights.is_file():
            raise UsageError(f"no such --init-weights file: {args.init_weights}")
        if args.init_weights.suffix == ".keras":
            saved = models.load_model(args.init_weights, "--init-weights")
            models.take_sizes_from(args, saved)
    models.check_model_and_data(args)
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
    earlier = training.earlier_run_files(args.out)
    if earlier and not args.overwrite:
        finished = "model.keras" in earlier
        raise UsageError(
            f"{args.out} holds {'a finished' if finished else 'an earlier'} run "
            f"({', '.join(earlier)})"
            + (": it is finished, nothing to resume" if args.resume else "")
            + "; choose another --out, or add --overwrite to replace it"
        )
    if args.resume and done is None:
        print(f"nothing to resume in {args.out}; starting from epoch 1")

    keras.utils.set_random_seed(args.seed)
    if args.model in models.LATENT_MODELS:
        return _train_latent_flow(args)
    precision = training.set_mixed_precision(args.mixed_precision)
    strategy = training.get_strategy(args.distribute)
    data = load_data(args)
    print(f"data: {data.description}")
    video = data.train.ndim == 5
    try:
        result = _fit(args, data, saved, strategy)
    except training.TrainingDiverged as error:
        raise RunFailed(" ".join(str(error).split())) from None
    model = result.model
    if not training.is_chief():
        return 0
    model.save(args.out / "model.keras")
    metrics, table = held_out_metrics(model, data, args)
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
            "stochastic": bool(args.stochastic) if video else None,
            "architecture": type(model).__name__,
            "config": _sizes(model),
            "beta": args.beta,
            "free_bits": args.free_bits,
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


def _train_latent_flow(args):
    """`train --model latent-flow`: rectified flow over a causal VAE's latents.

    The VAE is frozen, so the clips are encoded once and the flow trains on
    their latents; `model.keras` holds both networks.
    """
    import keras

    from vaelib import training
    from vaelib.models import LatentFlow

    vae = models.load_flow_vae(args)
    flow = LatentFlow(vae, num_frames=args.num_frames, width=args.width, seed=args.seed)
    # an earlier run's files go only with --overwrite (train checked that)
    training._refuse_or_clear_earlier_run(args.out, False, args.overwrite)
    data = load_data(args)
    print(f"data: {data.description}")
    scale = flow.adapt(data.train)
    train, validation = flow.latents(data.train), flow.latents(data.validation)
    print(f"latents: {train.shape[1:]} per clip, scaled by {scale:.4f} to unit std")
    flow.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0),
        jit_compile="auto" if args.jit is None else args.jit,
    )
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(args.out / "history.csv")),
    ]
    if args.lr_schedule == "cosine":
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: (
                    args.learning_rate
                    * 0.5
                    * (1 + math.cos(math.pi * epoch / args.epochs))
                )
            )
        )
    start = time.perf_counter()
    history = flow.fit(
        train,
        validation_data=(validation,),
        epochs=args.epochs,
        batch_size=args.batch_size or 32,
        callbacks=callbacks,
        verbose=2,
    ).history
    seconds = time.perf_counter() - start
    if (
        not all(math.isfinite(v) for v in history["loss"])
        or len(history["loss"]) < args.epochs
    ):
        raise RunFailed(
            f"the loss became NaN or infinite in epoch {len(history['loss'])}; "
            "nothing was saved: lower --learning-rate"
        )
    flow.save(args.out / "model.keras")
    metrics = flow_metrics(flow, data.test, args.seed)
    print(f"trained {args.epochs} epochs in {seconds:.1f} s")
    print(json.dumps(metrics, indent=2))
    metrics.update(
        {
            "model": args.model,
            "vae": str(args.vae),
            "data": args.data,
            "data_source": data.source,
            "data_description": data.description,
            "stochastic": bool(args.stochastic),
            "architecture": "LatentFlow",
            "config": {k: v for k, v in flow.get_config().items() if k != "vae"},
            "latent_scale": scale,
            "epochs": args.epochs,
            "final_loss": history["loss"][-1],
            "final_val_loss": history["val_loss"][-1],
            "train_seconds": round(seconds, 1),
            "backend": keras.backend.backend(),
            "command": "python -m vaelib " + shlex.join(sys.argv[1:]),
        }
    )
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out / 'model.keras'} and {args.out / 'metrics.json'}")
    return 0


def flow_metrics(flow, test, seed, num_samples=100, steps=20):
    """Generation statistics of a `LatentFlow`'s samples beside held-out clips.

    Brightness, ink and frame correlation (`generation_statistics`), frame
    FID against the test clips and the samples' identity consistency (32x32
    frames, which the shipped digit classifier reads), with the same for the
    test clips themselves (their identity, and FID between two halves) as
    the reference a model should reach.
    """
    from vaelib.metrics import (
        classifier_for_frames,
        frame_fid,
        generation_statistics,
        identity_consistency,
    )

    # the shipped digit classifier reads 32x32 frames: other sizes get the
    # statistics without frame FID and identity
    classifier = classifier_for_frames(tuple(test.shape[2:]), "auto")
    frames = min(flow.num_frames, test.shape[1])
    real = test[:, :frames]
    samples = flow.sample(min(num_samples, len(real)), seed=seed, steps=steps)
    samples = samples[:, :frames]
    half = len(real) // 2

    def row(clips, reference):
        if classifier is None:
            return generation_statistics(clips)
        return {
            **generation_statistics(clips),
            "fid": frame_fid(reference, clips, classifier),
            **identity_consistency(clips, classifier),
        }

    return {
        "samples": row(samples, real),
        "real_clips": row(real[half:], real[:half]),
        "sampling_steps": steps,
    }


def _fit(args, data, saved, strategy):
    from vaelib import training

    video = data.train.ndim == 5
    batch_size = args.batch_size or (16 if video else 64)
    train_data = data.train
    if not video and args.binarize == "dynamic":
        from vaelib.data import dynamically_binarized

        train_data = dynamically_binarized(data.train, batch_size, seed=args.seed)
    return training.fit_vae(
        lambda: models.build_model(args, data.train.shape[1:], saved),
        train_data,
        data.validation,
        epochs=args.epochs,
        batch_size=batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        out_dir=args.out if training.is_chief() else args.out / f"worker-{os.getpid()}",
        strategy=strategy,
        kl_anneal=None if args.kl_anneal == "none" else args.kl_anneal,
        jit_compile="auto" if args.jit is None else args.jit,
        resume=args.resume,
        overwrite=args.overwrite,
    )


def evaluate(args):
    """`evaluate`: the held-out metrics of a saved model."""
    model = models.load_model(args.model_path)
    if isinstance(model, models.latent_flow_class()):
        return _evaluate_latent_flow(args, model)
    shape = model.data_shape
    if len(shape) == 4:
        for option, given, saved in (
            ("--num-frames", args.num_frames, shape[0]),
            ("--frame-size", args.frame_size, shape[1]),
        ):
            if given is not None and given != saved:
                raise UsageError(
                    f"{option} {given} does not fit {args.model_path}, a model of "
                    f"{shape[0]} frames of {shape[1]}x{shape[2]}: leave it out"
                )
        args.num_frames, args.frame_size = shape[0], shape[1]
        args.data = args.data or "moving-digits"
        if args.data != "moving-digits":
            raise UsageError(
                f"{args.model_path} is a video model: use --data moving-digits"
            )
    elif (args.data or "digits") == "moving-digits":
        raise UsageError(f"{args.model_path} is an image model: use --data digits")
    elif args.stochastic:
        raise UsageError("--stochastic applies to the video models' moving digits")
    args.data = args.data or "digits"
    data = load_data(args, with_train=False)
    if data.test.shape[1:] != shape:
        raise UsageError(
            f"{args.model_path} takes input of shape {shape}, the data has "
            f"{data.test.shape[1:]}"
        )
    print(f"data: {data.description}")
    print(held_out_metrics(model, data, args)[1])
    return 0


def _evaluate_latent_flow(args, flow):
    frames, size = flow.clip_shape[:2]
    for option, given, saved in (
        ("--num-frames", args.num_frames, frames),
        ("--frame-size", args.frame_size, size),
    ):
        if given is not None and given != saved:
            raise UsageError(
                f"{option} {given} does not fit {args.model_path}, a model of "
                f"{frames} frames of {size}x{size}: leave it out"
            )
    if (args.data or "moving-digits") != "moving-digits":
        raise UsageError(f"{args.model_path} makes clips: use --data moving-digits")
    args.num_frames, args.frame_size, args.data = frames, size, "moving-digits"
    data = load_data(args, with_train=False)
    print(f"data: {data.description}")
    print(json.dumps(flow_metrics(flow, data.test, args.seed), indent=2))
    return 0


def generate(args):
    """`generate`: prior samples of a saved model as a PNG or GIF."""
    if args.out.suffix not in (".png", ".gif"):
        raise UsageError(f"--out must name a .png or .gif file, got {args.out}")
    model = models.load_model(args.model_path)
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


def data(args):
    """`data`: moving-digits clips written to a .npz file."""
    import numpy as np

    from vaelib.data import MovingDigits

    if args.out.suffix != ".npz":
        raise UsageError(f"--out must name a .npz file, got {args.out}")
    _refuse_to_replace(args.out, args.overwrite)
    clips = MovingDigits(
        frame_size=args.frame_size,
        num_digits=args.num_digits,
        num_frames=args.num_frames,
        digit_size=args.digit_size,
        speed=args.speed,
        split=args.split,
        seed=args.seed,
        stochastic=args.stochastic,
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
            bounces=info["bounces"],
        )
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror}") from None
    print(
        f"wrote {args.clips} {'stochastic ' if args.stochastic else ''}{args.split} "
        f"clips {clips.clip_shape} (uint8, 0..255) "
        f"from {clips.digit_source} digits to {args.out}"
    )
    return 0


def upgrade_model(args):
    """`upgrade-model`: an old-format file saved as its architecture class."""
    if not args.path.is_file():
        raise UsageError(f"no such model file: {args.path}")
    _refuse_to_replace(args.out or args.path, args.overwrite)
    import keras

    from vaelib.models import VAE, upgrade_model
    from vaelib.models.legacy import is_legacy

    try:
        old = keras.saving.load_model(args.path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any load failure is the file's fault
        raise UsageError(f"cannot load {args.path}: {error}") from None
    if not isinstance(old, VAE) or not is_legacy(old):
        raise UsageError(
            f"{args.path} holds a {type(old).__name__}, not an old-format VAE: "
            "nothing to convert"
        )
    out = args.out or args.path
    _refuse_to_replace(out, args.overwrite)
    new = upgrade_model(old)
    new.save(out)
    again = keras.saving.load_model(out, safe_mode=True)
    x = np.random.default_rng(1).random((2,) + new.data_shape, "float32")
    for a, b in zip(old.encoder(x), again.encoder(x), strict=True):
        if not np.array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        ):
            raise UsageError(f"{out} does not reproduce {args.path}; do not use it")
    print(
        f"wrote {out}: a {type(new).__name__} with {_sizes(new)}; "
        "outputs identical to the old file"
    )
    return 0


def _refuse_to_replace(path, overwrite):
    """A user's file is never replaced unless the command says `--overwrite`."""
    if path.exists() and not overwrite:
        raise UsageError(
            f"{path} exists; choose another --out, or add --overwrite to replace it"
        )


def _sizes(model):
    skipped = ("name", "trainable", "dtype")
    return {k: v for k, v in model.get_config().items() if k not in skipped}
