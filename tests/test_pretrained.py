"""The shipped models load, and still measure what their metrics.json says."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from vaelib.data import MovingDigits, load_digits_images
from vaelib.metrics import evaluate_prediction, evaluate_video
from vaelib.models import VAE, ConvLSTMPredictor
from vaelib.models.legacy import is_legacy

PRETRAINED = Path(__file__).resolve().parents[1] / "data" / "pretrained"


def _load(name):
    folder = PRETRAINED / name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["command"].startswith("python -m vaelib train ")
    return keras.saving.load_model(folder / "model.keras", safe_mode=True), metrics


SHIPPED = sorted(PRETRAINED.glob("*/model.keras"))


def test_a_fresh_python_loads_every_shipped_model_after_import_vaelib():
    if not SHIPPED:
        pytest.skip("no pretrained model is shipped")
    script = (
        "import sys, keras, vaelib\n"
        "for path in sys.argv[1:]:\n"
        "    model = keras.saving.load_model(path, safe_mode=True)\n"
        "    print(type(model).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, SHIPPED)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.split()) == len(SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.parent.name)
def test_every_shipped_model_knows_its_sizes(path):
    model = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(model, VAE)
    assert not is_legacy(model), (
        f"{path} is in the old format; convert it with: "
        f"python -m vaelib upgrade-model {path}"
    )


@pytest.mark.parametrize("name", ["convlstm-moving-digits", "predictor-moving-digits"])
def test_video_models_reproduce_their_held_out_psnr(name):
    if not (PRETRAINED / name).exists():
        pytest.skip(f"{name} is not shipped")
    model, metrics = _load(name)
    frames, size = model.data_shape[:2]
    clips = MovingDigits.scaled(size, num_frames=frames, split="test", seed=1).clips(48)
    report = evaluate_video(model, clips)
    seen = slice(0, frames // 2) if metrics["model"] == "predictor" else slice(None)
    psnr = float(report["psnr"][seen].mean())
    if metrics["model"] != "predictor":
        assert abs(psnr - metrics["reconstruction_psnr"]) < 0.5
        return
    assert isinstance(model, ConvLSTMPredictor) and model.context_frames == frames // 2
    context = model.context_frames
    prediction = evaluate_prediction(
        clips[:, context:], model.predict_frames(clips[:, :context])
    )
    assert abs(prediction["psnr"] - metrics["prediction_psnr"]) < 0.5


def test_conv_digits_reproduces_its_held_out_elbo():
    model, metrics = _load("conv-digits")
    if metrics["data_source"] != "sklearn":
        pytest.skip("trained on MNIST")
    test = load_digits_images("test", source="sklearn").images
    negative_elbo = -float(keras.ops.convert_to_numpy(model.elbo(test)).mean())
    assert abs(negative_elbo - metrics["negative_elbo"]) < 3.0
