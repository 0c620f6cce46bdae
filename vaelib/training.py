"""Training at scale: distribution strategies, mixed precision, callbacks, `fit_vae`.

Everything here wraps an existing engine rather than replacing it: TensorFlow's
`tf.distribute` strategies (one device, `MirroredStrategy` over several GPUs,
`MultiWorkerMirroredStrategy` over several machines), Keras'
`keras.distribution.DataParallel` on JAX, Keras' dtype policies for mixed
precision, and Keras' own callbacks (`BackupAndRestore`, `ModelCheckpoint`,
`TerminateOnNaN`, `CSVLogger`, `TensorBoard`). What vaelib adds is the wiring
and three small callbacks: `KLAnnealing`, `SampleLogger` and `Throughput`.

    >>> from vaelib.data import load_digits_images
    >>> from vaelib.models import mlp_vae
    >>> x = load_digits_images("train", source="sklearn").images[:256]
    >>> result = fit_vae(lambda: mlp_vae(latent_dim=2, hidden=(32,)), x, epochs=1,
    ...                  verbose=0)
    >>> tuple(result.model.elbo(x[:4]).shape)
    (4,)

Introduced in: course/11_training_at_scale.ipynb
"""

import contextlib
import csv
import json
import os
import pathlib
import shutil
import sys
import time
from typing import NamedTuple

import keras
import numpy as np

from vaelib import _arguments
from vaelib.choices import PRECISIONS, STRATEGIES


def _tf_config():
    try:
        return json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None


def num_workers():
    """Workers named in `TF_CONFIG` (1 when it is unset)."""
    return max(1, len(_tf_config().get("cluster", {}).get("worker", [])))


def is_chief():
    """True on the process that writes files: chief, worker 0, or the only one."""
    task = _tf_config().get("task", {})
    task_type = task.get("type", "worker")
    return task_type == "chief" or (
        task_type == "worker" and int(task.get("index", 0)) == 0
    )


def get_strategy(kind="auto", verbose=True):
    """The distribution engine to build and train models under.

    On TensorFlow this returns a `tf.distribute.Strategy`; on JAX a
    `keras.distribution.DataParallel` over all local devices, or `None` when
    there is only one. `auto` picks, in order: several workers when `TF_CONFIG`
    names more than one, `MirroredStrategy` when there are several GPUs, one
    GPU, or the default (CPU) strategy.

    Args:
        kind: `"auto"`, `"none"` (the default strategy), `"one-device"`,
            `"mirrored"` or `"multiworker"`.
        verbose: Print which strategy was chosen and over which devices.

    Returns:
        The strategy (or distribution); pass it to `distribution_scope`.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"Expected `kind` in {STRATEGIES}. Received: {kind!r}")
    backend = keras.backend.backend()
    if backend == "jax":
        strategy, description = _jax_distribution(kind)
    elif backend == "tensorflow":
        strategy, description = _tf_strategy(kind)
    else:
        if kind not in ("auto", "none"):
            raise ValueError(
                f"Distribution {kind!r} needs the TensorFlow or JAX backend. "
                f"Received backend: {backend}"
            )
        strategy, description = None, f"{backend}: one device, no distribution"
    if verbose:
        print(f"distribution: {description}")
    return strategy


def _tf_strategy(kind):
    import tensorflow as tf

    if kind == "auto" and num_workers() > 1:
        kind = "multiworker"
    if kind == "multiworker":
        # Collective ops must be configured before TensorFlow lists devices.
        return _tf_multiworker(tf)
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        if len(gpus) > 1:
            kind = "mirrored"
        elif gpus:
            kind = "one-device"
        else:
            kind = "none"
    if kind == "mirrored":
        devices = [d.name for d in gpus] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        strategy = tf.distribute.MirroredStrategy(devices)
        return strategy, f"MirroredStrategy over {', '.join(devices)}"
    if kind == "one-device":
        device = gpus[0].name if gpus else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device), f"OneDeviceStrategy({device})"
    return tf.distribute.get_strategy(), (
        f"default strategy (no distribution) on {'GPU' if gpus else 'CPU'}"
    )


def _tf_multiworker(tf):
    if num_workers() < 2:
        raise ValueError(
            "A multi-worker strategy needs TF_CONFIG naming at least two "
            "workers, e.g. {'cluster': {'worker': ['host1:port', 'host2:port']}, "
            "'task': {'type': 'worker', 'index': 0}}"
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = _tf_config().get("task", {})
    return strategy, (
        f"MultiWorkerMirroredStrategy, {num_workers()} workers "
        f"(this is {task.get('type', 'worker')} {task.get('index', 0)}), "
        f"{strategy.num_replicas_in_sync} replicas"
    )


def _jax_distribution(kind):
    devices = keras.distribution.list_devices()
    if kind == "multiworker":
        raise ValueError(
            "On JAX, several machines are joined with "
            "keras.distribution.initialize() before any model is built; then use "
            "kind='mirrored' (DataParallel over every process's devices)."
        )
    if kind in ("auto", "mirrored") and (len(devices) > 1 or kind == "mirrored"):
        return keras.distribution.DataParallel(devices=devices), (
            f"keras.distribution.DataParallel over {len(devices)} devices "
            f"({devices[0]} ...)"
        )
    return None, f"jax: one device ({devices[0]}), no distribution"


def distribution_scope(strategy):
    """A context manager: build and compile models inside it.

    Accepts what `get_strategy` returns (a `tf.distribute.Strategy`, a
    `keras.distribution.Distribution`, or `None` for no distribution).
    """
    if strategy is None:
        return contextlib.nullcontext()
    return strategy.scope()


def gpu_compute_capability():
    """The first GPU's CUDA compute capability, e.g. `(9, 0)`; `None` if unknown.

    Asked of the backend in use: TensorFlow's device details, JAX's device,
    or PyTorch's CUDA runtime.
    """
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
            capability = details.get("compute_capability")
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            capability = getattr(gpus[0], "compute_capability", None) if gpus else None
        elif backend == "torch":
            import torch

            available = torch.cuda.is_available()
            capability = torch.cuda.get_device_capability(0) if available else None
        else:
            capability = None
        if isinstance(capability, str):  # JAX: "9.0"
            capability = tuple(int(part) for part in capability.split(".")[:2])
        return tuple(int(part) for part in capability) if capability else None
    except Exception:  # noqa: BLE001 - no answer is "unknown", never an error
        return None


def set_mixed_precision(mode="off"):
    """Sets Keras' global dtype policy and returns its name.

    `"float16"` and `"bfloat16"` compute layers in half precision with float32
    weights (`mixed_float16` gets dynamic loss scaling from `compile`); `"auto"`
    chooses `mixed_bfloat16` on a GPU of compute capability 8.0 or newer
    (Ampere, Hopper: as fast as float16 there, with float32's range, so no
    loss scaling), `mixed_float16` on older GPUs, `mixed_bfloat16` on a TPU,
    and stays in float32 on a CPU, where half precision is slower.
    `VAE.compute_loss` always returns float32.
    """
    if mode not in PRECISIONS:
        raise ValueError(f"Expected `mode` in {PRECISIONS}. Received: {mode!r}")
    if mode == "auto":
        kinds = {
            str(d).split(":")[0].lower() for d in keras.distribution.list_devices()
        }
        if "gpu" in kinds or "cuda" in kinds:
            capability = gpu_compute_capability()
            mode = "bfloat16" if capability and capability >= (8, 0) else "float16"
        elif "tpu" in kinds:
            mode = "bfloat16"
        else:
            mode = "off"
    policy = {
        "off": "float32",
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
    }
    keras.config.set_dtype_policy(policy[mode])
    return policy[mode]


class KLAnnealing(keras.callbacks.Callback):
    """Sets the VAE's `beta` at the start of each epoch from a schedule.

    `"linear"` (Bowman et al., 2016) rises from 0 (the first epoch) to
    `beta_max` (epoch `warmup_epochs`, counted from 0), in equal steps, then
    stays there. `"cyclical"` (Fu et al., 2019) repeats a rise `cycles` times
    over `epochs`: each cycle spends `ratio` of its length rising and the rest
    at `beta_max`; its first epoch is already one step up the rise
    (`beta_max / (period * ratio)`), so no epoch trains without the KL. The
    schedule depends only on the epoch number, so a resumed run continues it
    where it stopped.

    Args:
        schedule: `"linear"` or `"cyclical"`.
        epochs: Total epochs of the run (for `"cyclical"`).
        warmup_epochs: Epochs to reach `beta_max` (for `"linear"`).
        cycles: Number of cycles (for `"cyclical"`).
        ratio: Rising share of each cycle (for `"cyclical"`).
        beta_max: The final weight of the KL term.

    Introduced in: course/03_elbo_in_depth.ipynb
    """

    def __init__(
        self,
        schedule="linear",
        epochs=None,
        warmup_epochs=10,
        cycles=4,
        ratio=0.5,
        beta_max=1.0,
    ):
        super().__init__()
        if schedule not in ("linear", "cyclical"):
            raise ValueError(
                f"Expected schedule 'linear' or 'cyclical'. Received: {schedule!r}"
            )
        if schedule == "cyclical" and not epochs:
            raise ValueError("A cyclical schedule needs `epochs`, the run's length.")
        if epochs is not None:
            epochs = _arguments.positive_int("epochs", epochs)
        warmup_epochs = _arguments.positive_int("warmup_epochs", warmup_epochs)
        cycles = _arguments.positive_int("cycles", cycles)
        ratio = _arguments.finite_float("ratio", ratio)
        if not 0 < ratio <= 1:
            raise ValueError(f"Expected 0 < ratio <= 1. Received: ratio={ratio}")
        beta_max = _arguments.finite_float("beta_max", beta_max, minimum=0)
        if schedule == "cyclical" and cycles > epochs:
            raise ValueError(
                "Expected at most one cycle per epoch. "
                f"Received: cycles={cycles}, epochs={epochs}"
            )
        self.schedule = schedule
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.cycles = cycles
        self.ratio = ratio
        self.beta_max = beta_max

    def beta_at(self, epoch):
        """The weight of the KL term during `epoch` (counted from 0)."""
        if self.schedule == "linear":
            progress = epoch / self.warmup_epochs
        else:
            period = self.epochs / self.cycles
            progress = ((epoch % period) + 1) / (period * self.ratio)
        return self.beta_max * min(1.0, progress)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(self.beta_at(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.beta_at(epoch))


class Throughput(keras.callbacks.Callback):
    """Adds `examples_per_second` (and `frames_per_second`) to each epoch's logs.

    Timed from the end of an epoch's first batch to the end of its last one,
    so compilation and validation are left out.

    Args:
        batch_size: Examples per batch.
        frames_per_example: Frames in one example (1 for images).
    """

    def __init__(self, batch_size, frames_per_example=1):
        super().__init__()
        self.batch_size = batch_size
        self.frames_per_example = frames_per_example

    def on_epoch_begin(self, epoch, logs=None):
        self._first = self._last = None
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._first is None:
            self._first = now
        else:
            self._batches += 1
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._batches:
            return
        rate = self._batches * self.batch_size / (self._last - self._first)
        logs["examples_per_second"] = rate
        if self.frames_per_example > 1:
            logs["frames_per_second"] = rate * self.frames_per_example


class SampleLogger(keras.callbacks.Callback):
    """Writes reconstructions and prior samples to TensorBoard every few epochs.

    Images are logged as a grid (inputs above their reconstructions, then
    samples); clips as frame strips, one clip per row. Uses `tf.summary`, so it
    needs TensorFlow installed (any Keras backend).

    Args:
        log_dir: TensorBoard directory (a `samples` run is written inside).
        inputs: A few held-out examples to reconstruct, `(n, ...)`.
        every: Log every `every` epochs (and after the last).
        num_samples: Prior samples per log.
        seed: Seed for the prior samples (the same noise every time, so the
            images show the model changing, not the noise).
    """

    def __init__(self, log_dir, inputs, every=5, num_samples=8, seed=0):
        super().__init__()
        self.log_dir = str(log_dir)
        self.inputs = np.asarray(inputs, "float32")
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self._writer = None

    def images(self):
        """The pictures to log, as `{name: (1, height, width, 1) float32}`."""
        from vaelib.viz import tile_images

        reconstructions = np.asarray(self.model.reconstruct(self.inputs))
        samples = np.asarray(self.model.sample(self.num_samples, seed=self.seed))
        if self.inputs.ndim == 5:
            # (n, frames, h, w, 1): one row of frames per clip, each input
            # clip above its reconstruction
            frames = self.inputs.shape[2:]
            pairs = np.stack([self.inputs, reconstructions], axis=1)
            rows = {
                "reconstructions": (pairs.reshape(-1, *frames), self.inputs.shape[1]),
                "samples": (samples.reshape(-1, *frames), samples.shape[1]),
            }
        else:
            rows = {
                "reconstructions": (
                    np.concatenate([self.inputs, reconstructions]),
                    len(self.inputs),
                ),
                "samples": (samples, len(samples)),
            }
        return {
            name: tile_images(images, columns)[None, :, :, None]
            for name, (images, columns) in rows.items()
        }

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs", 0) - 1
        if (epoch + 1) % self.every and epoch != last:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "samples")
            )
        with self._writer.as_default():
            for name, image in self.images().items():
                tf.summary.image(name, image, step=epoch)
        self._writer.flush()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training was stopped."""


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN` that raises `TrainingDiverged` naming the epoch.

    Raising (rather than setting `stop_training`) skips the other callbacks'
    `on_train_end`, so `BackupAndRestore` keeps the last good epoch on disk.
    """

    def __init__(self, backup_dir=None):
        super().__init__(raise_error=True)
        self.backup_dir = backup_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError:
            loss = float(np.asarray(logs["loss"]))
            hint = (
                f" The last good epoch is backed up in {self.backup_dir}."
                if self.backup_dir and os.path.isdir(self.backup_dir)
                else ""
            )
            raise TrainingDiverged(
                f"Training stopped: the loss became {loss} at epoch "
                f"{self._epoch + 1}, batch {batch + 1}. Check the data for NaN or "
                f"values outside [0, 1], or lower the learning rate.{hint}"
            ) from None


class FitResult(NamedTuple):
    """What `fit_vae` returns."""

    model: keras.Model
    history: dict
    initial_epoch: int
    seconds: float


def _trim_log(path, first_epoch_to_redo):
    """Drops rows of a CSV log at or after the epoch a resumed run restarts from."""
    if not path.exists():
        return
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < first_epoch_to_redo]
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(kept)


# What a run writes to its folder (`fit_vae`, and `model.keras` and
# `metrics.json` from the command line); `logs/` holds its TensorBoard logs.
RUN_FILES = ("model.keras", "metrics.json", "history.csv", "best.weights.h5")


def earlier_run_files(out_dir):
    """The files of a run in `out_dir` that is not interrupted (finished or failed).

    A run interrupted mid-training has a `backup/` folder and is continued
    with `resume=True`; any other run's files are a user's work that only
    `overwrite=True` (`--overwrite`) may replace.
    """
    out_dir = pathlib.Path(out_dir)
    if backup_epoch(out_dir) is not None:
        return []
    return [name for name in RUN_FILES if (out_dir / name).exists()]


def _refuse_or_clear_earlier_run(out_dir, resume, overwrite):
    """Raises if `out_dir` holds a finished run, or deletes it with `overwrite`."""
    earlier = earlier_run_files(out_dir)
    if not earlier:
        return
    if not overwrite:
        what = "a finished run" if "model.keras" in earlier else "an earlier run"
        action = (
            "it is finished, there is nothing to resume"
            if resume
            else "choose another out_dir (--out)"
        )
        raise ValueError(
            f"Expected out_dir without an earlier run. Received: out_dir={out_dir} "
            f"holds {what} ({', '.join(earlier)}): {action}, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    for name in earlier:
        (out_dir / name).unlink()
    shutil.rmtree(out_dir / "logs", ignore_errors=True)


def backup_epoch(out_dir, attempts=20, wait=0.05):
    """Epochs completed by an interrupted run in `out_dir` (None if none).

    Another process (a run in progress) may be rewriting Keras'
    `training_metadata.json` at the moment it is read; a file that is not yet
    valid JSON is read again, `attempts` times `wait` seconds apart, before it
    counts as broken.
    """
    metadata = pathlib.Path(out_dir) / "backup" / "training_metadata.json"
    for _ in range(attempts):
        if not metadata.exists():
            return None
        try:
            return int(json.loads(metadata.read_text())["epoch"])
        except (json.JSONDecodeError, KeyError, FileNotFoundError):
            time.sleep(wait)
    raise ValueError(
        "Expected Keras' BackupAndRestore metadata (JSON with an 'epoch') in "
        f"{metadata}. Received: a file that stayed unreadable for "
        f"{attempts * wait:.1f} s; delete the backup folder to start afresh"
    )


def fit_vae(
    build,
    train_data,
    validation_data=None,
    epochs=10,
    batch_size=64,
    learning_rate=1e-3,
    lr_schedule="constant",
    out_dir=None,
    strategy=None,
    kl_anneal=None,
    jit_compile="auto",
    resume=False,
    overwrite=False,
    sample_every=5,
    tensorboard=True,
    callbacks=(),
    verbose="auto",
):
    """Builds, compiles and trains a VAE with checkpoints, logs and safety nets.

    With `out_dir`, it writes:
    - `backup/`: Keras' `BackupAndRestore` state after every epoch; a run
      killed at any point continues from the last finished epoch with
      `resume=True` (removed once training finishes);
    - `best.weights.h5`: `ModelCheckpoint` of the lowest validation loss (or
      training loss without validation data), among the epochs trained at the
      final `beta` when the KL is annealed;
    - `history.csv`: `CSVLogger`, one row per epoch (including `beta` and the
      throughput), kept consistent across resumes;
    - `logs/`: TensorBoard scalars, and `SampleLogger` pictures every
      `sample_every` epochs, when TensorFlow is installed.

    `TerminateOnNaN` stops training at the first NaN or infinite loss, and
    `fit_vae` then raises `TrainingDiverged`.

    Args:
        build: A function that returns an uncompiled `VAE`; it is called inside
            `distribution_scope(strategy)`. An already built `VAE` is accepted
            when there is no distribution.
        train_data: Array `(n, ...)` in [0, 1], or a `tf.data.Dataset` of batches.
        validation_data: The same kinds, or None.
        epochs: Total epochs, counting those of a resumed run.
        batch_size: For arrays (per step, over all replicas).
        learning_rate: Adam's (initial) learning rate.
        lr_schedule: `"constant"`, or `"cosine"`: the learning rate falls from
            `learning_rate` towards 0 along half a cosine over `epochs`, set at
            the start of each epoch (so a resumed run continues it).
        out_dir: Where checkpoints and logs go; None keeps nothing on disk.
        strategy: From `get_strategy`, or None for no distribution.
        kl_anneal: A `KLAnnealing` callback, `"linear"`, `"cyclical"` or None.
        jit_compile: XLA-compile the train step: True, False or `"auto"`
            (Keras' rule: on for JAX, where an uncompiled step runs op by
            op; on TensorFlow, on only on a GPU and only for a model built
            outside a `tf.distribute` strategy, so off under the strategy
            `get_strategy` picks on a GPU (pass True there); off for
            TensorFlow on a CPU, where XLA slows the ConvLSTM models).
        resume: Continue an interrupted run in `out_dir`; without it, an
            interrupted run there is an error (so none is overwritten).
        overwrite: Delete a finished (or failed) run's files in `out_dir`
            (`RUN_FILES` and `logs/`) before training; without it, such a
            run is an error.
        sample_every: Epochs between TensorBoard sample pictures (0: never).
        tensorboard: Write TensorBoard logs (needs TensorFlow).
        callbacks: More Keras callbacks.
        verbose: As in `fit`; `"auto"` is a progress bar on a terminal and one
            line per epoch otherwise (stored notebook outputs stay short).

    Returns:
        A `FitResult(model, history, initial_epoch, seconds)`.

    Introduced in: course/11_training_at_scale.ipynb
    """
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(
            f"Expected lr_schedule 'constant' or 'cosine'. Received: {lr_schedule!r}"
        )
    epochs = _arguments.positive_int("epochs", epochs)
    batch_size = _arguments.positive_int("batch_size", batch_size)
    learning_rate = _arguments.finite_float("learning_rate", learning_rate)
    if learning_rate <= 0:
        raise ValueError(
            f"Expected learning_rate > 0. Received: learning_rate={learning_rate}"
        )
    for name, data in (
        ("train_data", train_data),
        ("validation_data", validation_data),
    ):
        if hasattr(data, "__len__") and hasattr(data, "shape") and not len(data):
            raise ValueError(
                f"Expected {name} to hold at least one example. Received: "
                f"shape={data.shape}"
            )
    out_dir = pathlib.Path(out_dir) if out_dir is not None else None
    first_epoch = _first_epoch(out_dir, resume, overwrite)
    sample_inputs = _first_examples(
        train_data if validation_data is None else validation_data, 8
    )
    model = _build_and_compile(
        build, strategy, learning_rate, jit_compile, sample_inputs.shape
    )
    callbacks = list(callbacks) + training_callbacks(
        model,
        out_dir,
        epochs=epochs,
        kl_anneal=kl_anneal,
        lr_schedule=lr_schedule,
        learning_rate=learning_rate,
        monitor="val_loss" if validation_data is not None else "loss",
        sample_inputs=sample_inputs,
        batch_size=batch_size,
        sample_every=sample_every if tensorboard else 0,
        tensorboard=tensorboard,
    )
    if verbose == "auto":
        verbose = 1 if _on_terminal() else 2
    if first_epoch and verbose:
        print(f"resuming from epoch {first_epoch} of {epochs} (backup in {out_dir})")

    start = time.perf_counter()
    fit_kwargs = {"shuffle": False}  # a tf.data pipeline shuffles itself
    if isinstance(train_data, np.ndarray):
        fit_kwargs = {"batch_size": batch_size, "shuffle": True}
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        **fit_kwargs,
    )
    return FitResult(model, history.history, first_epoch, time.perf_counter() - start)


def _first_epoch(out_dir, resume, overwrite=False):
    """The epoch a run in `out_dir` starts from; refuses to overwrite any run."""
    if out_dir is None:
        return 0
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(
            f"Expected out_dir to be a folder. Received: out_dir={out_dir}, a file"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    _refuse_or_clear_earlier_run(out_dir, resume, overwrite)
    done = backup_epoch(out_dir)
    if done is not None and not resume:
        raise ValueError(
            f"{out_dir} holds a run interrupted after epoch {done}: pass "
            "resume=True (--resume) to continue it, or choose another out_dir."
        )
    first_epoch = done or 0
    _trim_log(out_dir / "history.csv", first_epoch)
    return first_epoch


def _distributes(strategy):
    """Whether `strategy` places variables on several devices (not TF's default)."""
    if strategy is None:
        return False
    replicas = getattr(strategy, "num_replicas_in_sync", None)
    if replicas is not None:
        return replicas > 1 or num_workers() > 1
    return True  # a keras.distribution.Distribution (JAX): several devices


def _build_and_compile(build, strategy, learning_rate, jit_compile, input_shape):
    """The model from `build`, compiled with Adam, inside the strategy's scope."""
    with distribution_scope(strategy):
        if isinstance(build, keras.Model):
            if _distributes(strategy):
                raise ValueError(
                    "Expected build to be a function that returns the model: under "
                    "a distribution over several devices the model must be built "
                    "inside its scope. Received: build, an already built "
                    f"{type(build).__name__}"
                )
            model = build
        else:
            model = build()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile
        )
        if num_workers() > 1 and keras.backend.backend() == "tensorflow":
            _vector_logs(model)
        model.build(input_shape)
    return model


def training_callbacks(
    model,
    out_dir=None,
    *,
    epochs,
    kl_anneal=None,
    lr_schedule="constant",
    learning_rate=1e-3,
    monitor="val_loss",
    sample_inputs=None,
    batch_size=64,
    sample_every=5,
    tensorboard=True,
):
    """The callbacks `fit_vae` trains with, for a `fit` of your own.

    KL annealing and the cosine learning rate when asked for, `Throughput`,
    `StopOnNaN`, and with `out_dir` the CSV log, `BackupAndRestore`, the best
    checkpoint at full `beta` and (with `tensorboard`) TensorBoard logs and
    `SampleLogger` pictures of `sample_inputs`. Arguments as in `fit_vae`;
    `monitor` is the loss the best checkpoint compares.

    Returns:
        A list of Keras callbacks.
    """
    callbacks = []
    if kl_anneal is not None:
        if not isinstance(kl_anneal, KLAnnealing):
            kl_anneal = KLAnnealing(
                kl_anneal,
                epochs=epochs,
                warmup_epochs=max(1, epochs // 3),
                beta_max=float(keras.ops.convert_to_numpy(model.beta)),
            )
        callbacks.append(kl_anneal)
    if lr_schedule == "cosine":
        cosine = keras.optimizers.schedules.CosineDecay(learning_rate, epochs)
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: float(keras.ops.convert_to_numpy(cosine(epoch)))
            )
        )
    frames = 1
    if sample_inputs is not None and sample_inputs.ndim == 5:
        frames = sample_inputs.shape[1]
    callbacks.append(Throughput(batch_size, frames))
    callbacks.append(StopOnNaN(out_dir / "backup" if out_dir is not None else None))
    if out_dir is None:
        return callbacks
    callbacks += [
        keras.callbacks.CSVLogger(str(out_dir / "history.csv"), append=True),
        keras.callbacks.BackupAndRestore(
            str(out_dir / "backup"), double_checkpoint=True
        ),
        _BestAtFullBeta(
            kl_anneal,
            str(out_dir / "best.weights.h5"),
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
        ),
    ]
    if tensorboard and _has_tensorboard():
        callbacks.append(keras.callbacks.TensorBoard(str(out_dir / "logs")))
        if sample_every and sample_inputs is not None:
            callbacks.append(
                SampleLogger(out_dir / "logs", sample_inputs, every=sample_every)
            )
    return callbacks


class _BestAtFullBeta(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` that compares only epochs trained at the final `beta`.

    While a KL annealing schedule holds `beta` below its final value, the loss
    leaves out part of the KL, so it is lower than the loss of a better model
    at full `beta`: an unrestricted "best" checkpoint would keep a warm-up
    epoch for ever.
    """

    def __init__(self, kl_anneal, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_anneal = kl_anneal

    def on_epoch_end(self, epoch, logs=None):
        schedule = self.kl_anneal
        if schedule is not None and schedule.beta_at(epoch) < schedule.beta_max:
            return
        super().on_epoch_end(epoch, logs)


def _vector_logs(model):
    """Works around Keras 3 failing on scalar logs under several workers.

    `fit` reduces each replica's logs with `strategy.reduce("MEAN", v, axis=0)`,
    which raises "Invalid reduction dimension 0 for input with 0 dimensions"
    for scalars under `MultiWorkerMirroredStrategy` (tensorflow/tensorflow#72388).
    Giving each value shape (1,) makes that reduction the mean over workers.
    """
    compute_metrics = model.compute_metrics

    def compute_vector_metrics(*args, **kwargs):
        logs = compute_metrics(*args, **kwargs)
        return {name: keras.ops.reshape(value, (1,)) for name, value in logs.items()}

    model.compute_metrics = compute_vector_metrics


def _first_examples(data, n):
    if hasattr(data, "take") and not isinstance(data, np.ndarray):
        batch = next(iter(data.take(1)))
        batch = batch[0] if isinstance(batch, tuple) else batch
        return np.asarray(batch)[:n]
    return np.asarray(data[:n], "float32")


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _on_terminal():
    return sys.stdout.isatty()
