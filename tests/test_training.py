import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from vaelib.data import load_digits_images
from vaelib.models import convlstm_vae, mlp_vae
from vaelib.training import (
    KLAnnealing,
    SampleLogger,
    TrainingDiverged,
    backup_epoch,
    fit_vae,
    get_strategy,
    set_mixed_precision,
)

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="tf.distribute strategies need TensorFlow"
)


@pytest.fixture(scope="module")
def images():
    return load_digits_images("train", source="sklearn").images[:512]


def _run_python(script, env=None, timeout=240, cwd=None):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=cwd,
    )


def test_linear_annealing_rises_to_beta_max_then_stays():
    schedule = KLAnnealing("linear", warmup_epochs=4, beta_max=2.0)
    assert [schedule.beta_at(e) for e in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_cyclical_annealing_repeats_its_rise_each_cycle():
    # 8 epochs, 2 cycles of 4 epochs, each rising over half a cycle (2 epochs).
    schedule = KLAnnealing("cyclical", epochs=8, cycles=2, ratio=0.5)
    assert [schedule.beta_at(e) for e in range(8)] == [0.5, 1, 1, 1, 0.5, 1, 1, 1]


@pytest.mark.every_backend
def test_fit_vae_compiles_the_step_as_keras_would_by_default(images):
    """fit_vae's default was jit_compile=False: on JAX, Keras then ran every
    train step op by op, uncompiled, in the CLI and in notebook 11 alike. The
    default is now Keras' "auto": XLA on JAX (and on a TensorFlow GPU), off on
    a TensorFlow CPU, where it slows the ConvLSTM models."""
    import tensorflow as tf

    result = fit_vae(
        mlp_vae(latent_dim=2, hidden=(8,), seed=0), images[:64], epochs=1, verbose=0
    )
    if keras.backend.backend() == "jax":
        assert result.model.jit_compile is True
    elif not tf.config.list_physical_devices("GPU"):
        assert result.model.jit_compile is False
    forced = fit_vae(
        mlp_vae(latent_dim=2, hidden=(8,), seed=0),
        images[:64],
        epochs=1,
        jit_compile=False,
        verbose=0,
    )
    assert forced.model.jit_compile is False


@pytest.mark.every_backend
def test_annealing_sets_the_models_beta_during_fit(images):
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.beta)))

    result = fit_vae(
        mlp_vae(latent_dim=2, hidden=(16,), seed=0),
        images[:128],
        epochs=3,
        kl_anneal=KLAnnealing("linear", warmup_epochs=2),
        callbacks=[Record()],
        verbose=0,
    )
    np.testing.assert_allclose(seen, [0.0, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(result.history["beta"], seen, rtol=1e-6)


def test_cosine_schedule_sets_each_epochs_learning_rate(images):
    result = fit_vae(
        mlp_vae(latent_dim=2, hidden=(16,), seed=0),
        images[:128],
        epochs=4,
        learning_rate=2e-3,
        lr_schedule="cosine",
        verbose=0,
    )
    # Half a cosine from 2e-3 towards 0 over 4 epochs, set at each epoch's start.
    expected = 2e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(4) / 4))
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-5)


def test_best_checkpoint_ignores_epochs_still_warming_up_the_kl(images, tmp_path):
    # The loss of a warm-up epoch leaves part of the KL out, so it looks better
    # than any epoch at full beta: it must not become the "best" checkpoint.
    best = tmp_path / "best.weights.h5"
    existed = []

    class Record(keras.callbacks.Callback):  # runs before the checkpoint callback
        def on_epoch_end(self, epoch, logs=None):
            existed.append(best.exists())

    fit_vae(
        mlp_vae(latent_dim=2, hidden=(16,), seed=0),
        images[:128],
        images[128:192],
        epochs=4,
        kl_anneal=KLAnnealing("linear", warmup_epochs=3),
        out_dir=tmp_path,
        tensorboard=False,
        callbacks=[Record()],
        verbose=0,
    )
    # beta is 0, 1/3, 2/3, 1: nothing is saved before the end of epoch 3.
    assert existed == [False, False, False, False]
    assert best.exists()


def test_bad_schedule_and_strategy_names_raise():
    with pytest.raises(ValueError, match="linear' or 'cyclical"):
        KLAnnealing("cosine")
    with pytest.raises(ValueError, match="needs `epochs`"):
        KLAnnealing("cyclical")
    with pytest.raises(ValueError, match="lr_schedule 'constant' or 'cosine'"):
        fit_vae(mlp_vae(latent_dim=2), np.zeros((4, 28, 28, 1)), lr_schedule="step")
    with pytest.raises(ValueError, match="Expected `kind`"):
        get_strategy("ring-allreduce")
    with pytest.raises(ValueError, match="Expected `mode`"):
        set_mixed_precision("float8")


@tensorflow_only
def test_multiworker_strategy_without_tf_config_explains_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG naming at least two workers"):
        get_strategy("multiworker", verbose=False)


def test_fit_vae_writes_logs_checkpoints_and_throughput(images, tmp_path):
    result = fit_vae(
        lambda: mlp_vae(latent_dim=2, hidden=(32,), seed=0),
        images[:256],
        images[256:320],
        epochs=2,
        batch_size=64,
        out_dir=tmp_path,
        sample_every=1,
        verbose=0,
    )
    assert result.initial_epoch == 0
    assert result.history["examples_per_second"][-1] > 0
    with (tmp_path / "history.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["val_loss"]) == pytest.approx(result.history["val_loss"][1])
    assert (tmp_path / "best.weights.h5").is_file()
    assert not (tmp_path / "backup").exists(), "a finished run removes its backup"
    if BACKEND == "tensorflow":
        assert list((tmp_path / "logs" / "samples").glob("events.out.tfevents.*"))


def test_sample_logger_tiles_inputs_reconstructions_and_samples(images):
    model = mlp_vae(latent_dim=2, hidden=(16,), seed=0)
    logger = SampleLogger("unused", images[:4], num_samples=6)
    logger.set_model(model)
    pictures = logger.images()
    # 28x28 images with 1-pixel gaps: 2 rows of 4, and 1 row of 6.
    assert pictures["reconstructions"].shape == (1, 57, 4 * 29 - 1, 1)
    assert pictures["samples"].shape == (1, 28, 6 * 29 - 1, 1)
    np.testing.assert_allclose(
        pictures["reconstructions"][0, :28, :28, 0], images[0, ..., 0]
    )

    clips = np.random.default_rng(0).random((2, 3, 16, 16, 1), dtype="float32")
    video = convlstm_vae((3, 16, 16, 1), latent_dim=2, filters=(4,), lstm_filters=4)
    logger = SampleLogger("unused", clips, num_samples=2)
    logger.set_model(video)
    pictures = logger.images()
    # One row of 3 frames per clip: input, reconstruction, input, reconstruction.
    assert pictures["reconstructions"].shape == (1, 4 * 17 - 1, 3 * 17 - 1, 1)
    assert pictures["samples"].shape == (1, 2 * 17 - 1, 3 * 17 - 1, 1)


def test_fit_vae_refuses_to_overwrite_an_interrupted_run(images, tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    with pytest.raises(ValueError, match="interrupted after epoch 2: pass resume=True"):
        fit_vae(mlp_vae(latent_dim=2), images[:64], epochs=3, out_dir=tmp_path)


def test_nan_in_array_data_is_refused_before_training(images):
    bad = images[:128].copy()
    bad[3, 10, 10, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_vae(mlp_vae(latent_dim=2, seed=0), bad, epochs=1, verbose=0)


@tensorflow_only
@pytest.mark.every_backend
def test_nan_in_a_dataset_stops_training_with_the_epoch_named(images):
    import tensorflow as tf

    bad = images[:128].copy()
    bad[70, 10, 10, 0] = np.nan
    batches = tf.data.Dataset.from_tensor_slices(bad).batch(64)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, batch 2"):
        fit_vae(mlp_vae(latent_dim=2, seed=0), batches, epochs=3, verbose=0)


@pytest.mark.parametrize("mode", ["float16", "bfloat16"])
@pytest.mark.every_backend
def test_mixed_precision_computes_in_half_and_keeps_the_loss_in_float32(images, mode):
    try:
        assert set_mixed_precision(mode) == f"mixed_{mode}"
        model = mlp_vae(latent_dim=4, hidden=(32,), seed=0)
        model.compile(optimizer="adam")
        decoder_output, z_mean, _ = model(images[:8])
        assert keras.backend.standardize_dtype(decoder_output.dtype) == mode
        loss = model.compute_loss(images[:8], None, (decoder_output, z_mean, _))
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"
        assert model.beta.dtype == "float32"
        history = model.fit(images[:128], epochs=2, batch_size=32, verbose=0).history
        assert np.isfinite(history["loss"]).all()
        assert history["loss"][1] < history["loss"][0]
    finally:
        set_mixed_precision("off")
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize(
    ("devices", "capability", "policy"),
    [
        (["gpu:0"], (9, 0), "mixed_bfloat16"),  # Hopper (H100)
        (["gpu:0"], (8, 0), "mixed_bfloat16"),  # Ampere (A100)
        (["cuda:0"], (7, 5), "mixed_float16"),  # Turing (T4): no fast bfloat16
        (["gpu:0"], None, "mixed_float16"),  # unknown: the safe choice
        (["tpu:0"], None, "mixed_bfloat16"),
        (["cpu:0"], None, "float32"),
    ],
)
def test_auto_precision_follows_the_device(monkeypatch, devices, capability, policy):
    from vaelib import training

    monkeypatch.setattr(keras.distribution, "list_devices", lambda: devices)
    monkeypatch.setattr(training, "gpu_compute_capability", lambda: capability)
    try:
        assert set_mixed_precision("auto") == policy
        assert keras.config.dtype_policy().name == policy
    finally:
        set_mixed_precision("off")


def test_gpu_compute_capability_is_none_without_a_gpu():
    from vaelib import training

    assert training.gpu_compute_capability() is None  # this machine has no GPU


@tensorflow_only
def test_mirrored_strategy_over_two_logical_cpus_trains(tmp_path):
    result = _run_python(
        """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        import numpy as np
        from vaelib.data import load_digits_images
        from vaelib.models import mlp_vae
        from vaelib.training import fit_vae, get_strategy

        strategy = get_strategy("mirrored")
        assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
        x = load_digits_images("train", source="sklearn").images[:256]
        result = fit_vae(lambda: mlp_vae(latent_dim=4, seed=0), x, epochs=3,
                         batch_size=64, strategy=strategy, verbose=0)
        loss = result.history["loss"]
        assert loss[-1] < loss[0], loss
        # The reported loss is the global-batch mean, not a sum over replicas.
        distributed = result.model.evaluate(
            x, batch_size=64, verbose=0, return_dict=True
        )
        single = -float(np.mean(result.model.elbo(x)))
        assert abs(distributed["loss"] / single - 1) < 0.05, (distributed, single)
        print("replicas", strategy.num_replicas_in_sync, "loss", loss)
        """,
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy over /device:CPU:0, /device:CPU:1" in result.stdout
    assert "replicas 2" in result.stdout


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@tensorflow_only
def test_two_worker_multiworker_strategy_on_localhost_agrees_on_weights(tmp_path):
    ports = _free_ports(2)
    workers = [f"localhost:{port}" for port in ports]
    script = """
        import sys
        import numpy as np
        from vaelib.data import load_digits_images
        from vaelib.models import mlp_vae
        from vaelib.training import fit_vae, get_strategy

        strategy = get_strategy("auto")
        assert strategy.num_replicas_in_sync == 2
        x = load_digits_images("train", source="sklearn").images[:256]
        result = fit_vae(lambda: mlp_vae(latent_dim=4, hidden=(32,), seed=0), x,
                         epochs=2, batch_size=64, strategy=strategy, verbose=0)
        weights = np.concatenate([np.ravel(w) for w in result.model.get_weights()])
        np.save(sys.argv[1] if len(sys.argv) > 1 else "weights.npy", weights)
        print("loss", result.history["loss"])
    """
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            TF_CONFIG=json.dumps(
                {
                    "cluster": {"worker": workers},
                    "task": {"type": "worker", "index": index},
                }
            ),
        )
        workdir = tmp_path / f"worker{index}"
        workdir.mkdir()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script)],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (out, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "MultiWorkerMirroredStrategy, 2 workers" in out
    first, second = (np.load(tmp_path / f"worker{i}" / "weights.npy") for i in range(2))
    assert first.shape == second.shape and first.size > 1000
    np.testing.assert_array_equal(first, second)
    untrained = np.concatenate(
        [np.ravel(w) for w in mlp_vae(latent_dim=4, hidden=(32,), seed=0).get_weights()]
    )
    assert not np.allclose(first, untrained), "the workers did not train"


def _backed_up_epochs(out):
    try:
        return backup_epoch(out) or 0
    except ValueError:  # caught while Keras was writing it
        return 0


def _epochs_logged(path):
    if not path.exists():
        return []
    with path.open() as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_a_run_killed_after_epoch_2_resumes_without_losing_or_repeating_an_epoch(
    tmp_path,
):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "vaelib", "train", "--model", "mlp", "--data", "digits",
        "--source", "sklearn", "--epochs", "5", "--batch-size", "32",
        "--latent-dim", "2", "--iwae-k", "2", "--out", str(out),
    ]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while _backed_up_epochs(out) < 2:
        assert first.poll() is None, first.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "epoch 2 never finished"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    killed_at = backup_epoch(out)
    assert killed_at < 5, "the run finished before it could be killed"
    assert not (out / "model.keras").exists()

    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "add --resume" in refused.stderr

    resumed = subprocess.run(
        command + ["--resume"], capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = int(resumed.stdout.split("resuming from epoch ")[1].split()[0])
    assert 2 <= start <= killed_at
    assert _epochs_logged(out / "history.csv") == list(range(5))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 5 and metrics["resumed_from_epoch"] == start
    assert not (out / "backup").exists()
    keras.saving.load_model(out / "model.keras")


def test_jax_data_parallel_over_two_host_devices_trains():
    pytest.importorskip("jax")
    result = _run_python(
        """
        import keras
        from vaelib.data import load_digits_images
        from vaelib.models import mlp_vae
        from vaelib.training import fit_vae, get_strategy

        distribution = get_strategy("auto")
        assert type(distribution).__name__ == "DataParallel", distribution
        x = load_digits_images("train", source="sklearn").images[:256]
        result = fit_vae(lambda: mlp_vae(latent_dim=4, seed=0), x, epochs=3,
                         batch_size=64, strategy=distribution, verbose=0)
        loss = result.history["loss"]
        assert loss[-1] < loss[0], loss
        kernel = result.model.encoder.trainable_variables[0].value
        print("devices", len(kernel.sharding.device_set))
        """,
        env={
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "JAX_PLATFORMS": "cpu",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DataParallel over 2 devices" in result.stdout
    assert "devices 2" in result.stdout


def test_backup_epoch_waits_for_a_metadata_file_being_written(tmp_path):
    import threading

    backup = tmp_path / "backup"
    backup.mkdir()
    metadata = backup / "training_metadata.json"
    metadata.write_text('{"epo')  # caught half-written by another process
    threading.Timer(0.2, lambda: metadata.write_text('{"epoch": 3}')).start()
    assert backup_epoch(tmp_path) == 3
    metadata.write_text("not json")
    with pytest.raises(ValueError, match="training_metadata.json"):
        backup_epoch(tmp_path, attempts=3, wait=0.01)
    metadata.unlink()
    assert backup_epoch(tmp_path) is None
