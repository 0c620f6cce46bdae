"""Models on the command line: built from the size options, or read from a file.

A `.keras` file knows its architecture and sizes (`MLPVAE`, `ConvLSTMVAE`,
...), so `--init-weights model.keras` needs no size option and `evaluate`
reads the kind of model from the file, never from its name.
"""

import sys

from vaelib.commands.arguments import UsageError

IMAGE_MODELS = ("mlp", "conv")
VIDEO_MODELS = ("framewise", "convlstm", "predictor", "learned-prior", "causal3d")
# generative models over a trained VAE's latents: not VAEs, trained by run.py
LATENT_MODELS = ("latent-flow",)
MODELS = IMAGE_MODELS + VIDEO_MODELS + LATENT_MODELS

# Size options of `train`, by the config key they set.
SIZE_OPTIONS = {
    "latent_dim": "--latent-dim",
    "hidden": "--hidden",
    "filters": "--filters",
    "lstm_filters": "--lstm-filters",
    "decoder_convs": "--decoder-convs",
    "skip": "--skip",
}


def _classes():
    from vaelib import models

    return {
        "mlp": models.MLPVAE,
        "conv": models.ConvVAE,
        "framewise": models.FramewiseVAE,
        "convlstm": models.ConvLSTMVAE,
        "predictor": models.ConvLSTMPredictor,
        "learned-prior": models.LearnedPriorVAE,
        "causal3d": models.CausalVideoVAE,
        "latent-flow": models.LatentFlow,
    }


def architecture_of(model):
    """The `--model` name of a model's class (`"convlstm"` for a `ConvLSTMVAE`)."""
    for name, cls in _classes().items():
        if type(model) is cls:
            return name
    raise UsageError(
        f"expected a model of one of vaelib's architectures ({', '.join(MODELS)}), "
        f"got a {type(model).__name__}"
    )


def latent_flow_class():
    from vaelib.models import LatentFlow

    return LatentFlow


def _one_line(error):
    return " ".join(str(error).split())[:300]


def load_model(path, option="--model-path"):
    """Loads a vaelib model from a `.keras` file with `safe_mode=True`.

    An old-format file (a plain `VAE` whose sizes live only in its graph) is
    converted in memory, with a note on stderr saying how to convert the file.
    """
    if path.suffix != ".keras":
        raise UsageError(f"{option} must name a .keras file, got {path}")
    if not path.is_file():
        raise UsageError(f"no such model file: {path}")
    import keras

    from vaelib.models import VAE
    from vaelib.models.legacy import is_legacy, upgrade_model

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any load failure is the file's fault
        raise UsageError(f"cannot load {path}: {_one_line(error)}") from None
    if type(model).__name__ == "LatentFlow":
        return model
    if not isinstance(model, VAE):
        raise UsageError(
            f"{path} is not a vaelib VAE: it holds a {type(model).__name__}"
        )
    if is_legacy(model):
        try:
            model = upgrade_model(model)
        except ValueError as error:
            raise UsageError(f"cannot use {path}: {_one_line(error)}") from None
        print(
            f"note: {path} is in the old format (sizes only in its graph); convert "
            f"it once with: python -m vaelib upgrade-model {path} --overwrite",
            file=sys.stderr,
        )
    architecture_of(model)
    return model


def _same(given, saved):
    if isinstance(given, tuple | list):
        return list(given) == list(saved)
    return given == saved


def take_sizes_from(args, saved):
    """Fills `--model`, `--data` and the clip sizes from a saved model.

    An option the user gave must agree with the file: sizes come from it.
    """
    name = architecture_of(saved)
    if args.model is not None and args.model != name:
        raise UsageError(
            f"--model {args.model} differs from the --init-weights model, "
            f"a {name} model"
        )
    args.model = name
    config = saved.get_config()
    for key, option in SIZE_OPTIONS.items():
        given = getattr(args, key)
        if key == "skip" and not given:
            continue
        if given is not None and key in config and not _same(given, config[key]):
            shown = ",".join(map(str, given)) if isinstance(given, tuple) else given
            raise UsageError(
                f"{option} {shown} differs from the --init-weights model's "
                f"{key}={config[key]}: leave it out, the sizes come from the file"
            )
    if name in VIDEO_MODELS:
        num_frames, frame_size = saved.data_shape[:2]
        for option, key, value in (
            ("--num-frames", "num_frames", num_frames),
            ("--frame-size", "frame_size", frame_size),
        ):
            given = getattr(args, key)
            if given is not None and given != value:
                raise UsageError(
                    f"{option} {given} differs from the --init-weights model's "
                    f"{value}: leave it out"
                )
            setattr(args, key, value)


def default_filters(args):
    """`--filters`, or the default of `--model` (and of the clip size)."""
    if args.filters is not None:
        return args.filters
    if args.model == "conv":
        return (32, 64)
    return (16, 32) if args.frame_size <= 32 else (16, 32, 64)


def check_model_and_data(args):
    """Fills the defaults that depend on `--model`; refuses what does not fit.

    Runs before any data is loaded or generated.
    """
    args.model = args.model or "mlp"
    if args.model in LATENT_MODELS:
        _check_latent_flow(args)
        return
    if args.vae is not None:
        raise UsageError("--vae applies to --model latent-flow")
    video = args.model in VIDEO_MODELS
    args.data = args.data or ("moving-digits" if video else "digits")
    args.frame_size = args.frame_size or 64
    # a causal 3-D VAE takes the first frame alone, then groups of 4: 1 + 4k
    args.num_frames = args.num_frames or (17 if args.model == "causal3d" else 20)
    if video != (args.data == "moving-digits"):
        wanted = "--data moving-digits" if video else "--data digits or --data mnist"
        raise UsageError(f"--model {args.model} needs {wanted}")
    if args.stochastic and not video:
        raise UsageError("--stochastic applies to --data moving-digits")
    if args.filters is not None and args.model == "mlp":
        raise UsageError("--filters applies to conv and video models, not mlp")
    if args.hidden is not None and args.model != "mlp":
        raise UsageError("--hidden applies to --model mlp")
    if args.lstm_filters is not None and args.model not in (
        "convlstm",
        "predictor",
        "learned-prior",
    ):
        raise UsageError(
            "--lstm-filters applies to --model convlstm, predictor or learned-prior"
        )
    if args.skip and args.model not in ("convlstm", "predictor"):
        raise UsageError("--skip applies to --model convlstm or predictor")
    if args.decoder_convs not in (None, 1) and not video:
        raise UsageError("--decoder-convs applies to the video models")
    if args.model == "causal3d" and (args.num_frames - 1) % 4:
        raise UsageError(
            "--model causal3d needs --num-frames = 1 + a multiple of 4 (the first "
            f"frame alone, then groups of 4), e.g. 17 or 21; got {args.num_frames}"
        )
    if args.model == "causal3d" and args.decoder_convs not in (None, 1):
        raise UsageError("--decoder-convs applies to the ConvLSTM and framewise models")
    if args.model == "predictor" and args.num_frames < 2:
        raise UsageError("--model predictor needs --num-frames of at least 2")
    if video:
        if args.frame_size < 16:
            raise UsageError(f"--frame-size must be at least 16, got {args.frame_size}")
        filters = default_filters(args)
        factor = 2 ** len(filters)
        if args.frame_size % factor:
            raise UsageError(
                f"--frame-size must be divisible by {factor} (2 ** the number of "
                f"filters, {','.join(map(str, filters))}), got {args.frame_size}"
            )


def _check_latent_flow(args):
    if args.vae is None:
        raise UsageError(
            "--model latent-flow needs --vae PATH, a trained causal3d model "
            "(e.g. data/pretrained/causal-video-vae-moving-mnist/model.keras)"
        )
    if args.init_weights is not None:
        raise UsageError("--init-weights applies to the VAEs, not to latent-flow")
    args.data = args.data or "moving-digits"
    if args.data != "moving-digits":
        raise UsageError("--model latent-flow needs --data moving-digits")
    # 21 frames: 10 of context, 10 to predict and one over, 6 latent frames
    # (checked against the VAE's temporal factor once it is loaded)
    args.num_frames = args.num_frames or 21
    for option, value, default in (
        ("--latent-dim", args.latent_dim, None),
        ("--filters", args.filters, None),
        ("--hidden", args.hidden, None),
        ("--lstm-filters", args.lstm_filters, None),
        ("--decoder-convs", args.decoder_convs, None),
        ("--skip", args.skip, False),
        ("--beta", args.beta, 1.0),
        ("--free-bits", args.free_bits, 0.0),
        ("--kl-anneal", args.kl_anneal, "none"),
        ("--mixed-precision", args.mixed_precision, "off"),
        ("--distribute", args.distribute, "auto"),
        ("--resume", args.resume, False),
    ):
        if value != default:
            raise UsageError(
                f"{option} applies to the VAEs; latent-flow takes --width, "
                "--epochs, --batch-size, --learning-rate, --lr-schedule, --jit"
            )


def load_flow_vae(args):
    """The trained `CausalVideoVAE` of `--vae`, its frames' size checked."""
    from vaelib.models import CausalVideoVAE

    vae = load_model(args.vae, "--vae")
    if not isinstance(vae, CausalVideoVAE):
        raise UsageError(
            f"--vae {args.vae} must be a causal3d model, it is a {architecture_of(vae)}"
        )
    size = vae.data_shape[1]
    if args.frame_size is not None and args.frame_size != size:
        raise UsageError(
            f"--frame-size {args.frame_size} does not fit --vae {args.vae}, a model "
            f"of {size}x{size} frames: leave it out"
        )
    args.frame_size = size
    r = vae.temporal_factor
    if (args.num_frames - 1) % r:
        raise UsageError(
            f"--model latent-flow needs --num-frames = 1 + a multiple of {r} (the "
            f"--vae model's temporal factor), e.g. {1 + 4 * r} or {1 + 5 * r}; "
            f"got {args.num_frames}"
        )
    if args.overwrite and args.vae.resolve().parent == args.out.resolve():
        raise UsageError(
            f"--vae {args.vae} is inside --out {args.out}, which --overwrite clears"
        )
    return vae


def build_architecture(args, data_shape):
    """A new model of `--model` with the size options (or their defaults)."""
    classes = _classes()
    common = dict(input_shape=data_shape, seed=args.seed, free_bits=args.free_bits)
    if args.model in VIDEO_MODELS:
        common.update(
            latent_dim=args.latent_dim or 8,
            filters=default_filters(args),
            decoder_convs=args.decoder_convs or 1,
        )
        if args.model == "framewise":
            return classes["framewise"](**common)
        if args.model == "causal3d":
            del common["decoder_convs"]
            common["latent_dim"] = args.latent_dim or 16
            return classes["causal3d"](**common)
        if args.model == "learned-prior":
            # the defaults of data/pretrained/learned-prior-moving-mnist
            common.update(
                latent_dim=args.latent_dim or 32,
                filters=args.filters or (32, 64),
                lstm_filters=args.lstm_filters or 64,
                decoder_convs=args.decoder_convs or 2,
            )
            return classes["learned-prior"](**common)
        common.update(
            lstm_filters=args.lstm_filters or (32 if args.frame_size <= 32 else 64),
            skip=args.skip,
        )
        if args.model == "convlstm":
            return classes["convlstm"](**common)
        return classes["predictor"](context_frames=args.num_frames // 2, **common)
    common["latent_dim"] = args.latent_dim or 16
    if args.model == "conv":
        return classes["conv"](filters=default_filters(args), **common)
    return classes["mlp"](hidden=args.hidden or (512,), **common)


def build_model(args, data_shape, saved=None):
    """The model `train` fits: new, from `saved` (its sizes and weights) or
    from a `.weights.h5` file; its `beta` set to `--beta` in every case."""
    data_shape = tuple(data_shape)
    if saved is not None:
        if saved.data_shape != data_shape:
            raise UsageError(
                f"--init-weights {args.init_weights} takes input of shape "
                f"{saved.data_shape}, the data has {data_shape}"
            )
        config = saved.get_config()
        config["seed"] = args.seed
        config["free_bits"] = args.free_bits
        model = type(saved).from_config(config)
        model.set_weights(saved.get_weights())
    else:
        model = build_architecture(args, data_shape)
        if args.init_weights is not None:
            try:
                model.load_weights(args.init_weights)
            except ValueError as error:
                raise UsageError(
                    f"--init-weights {args.init_weights} does not fit this --model "
                    f"and its sizes (same --filters, --lstm-filters, "
                    f"--decoder-convs, --skip, --latent-dim as the saved model?): "
                    f"{_one_line(error)}"
                ) from None
    # A saved beta is a weight: the run's --beta replaces it explicitly.
    model.beta.assign(args.beta)
    return model
