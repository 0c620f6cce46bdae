"""The shipped models load, and still measure what their metrics.json says."""

import json
from pathlib import Path

import keras
import pytest

import vaelib.models  # noqa: F401 - registers the classes for loading
from vaelib.data import MovingDigits, load_digits_images
from vaelib.metrics import evaluate_video

PRETRAINED = Path(__file__).resolve().parents[1] / "data" / "pretrained"


def _load(name):
    folder = PRETRAINED / name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["command"].startswith("python -m vaelib train ")
    return keras.saving.load_model(folder / "model.keras", safe_mode=True), metrics


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
    else:
        assert psnr > metrics["copy_last_frame_psnr"]


def test_conv_digits_reproduces_its_held_out_elbo():
    model, metrics = _load("conv-digits")
    if metrics["data_source"] != "sklearn":
        pytest.skip("trained on MNIST")
    test = load_digits_images("test", source="sklearn").images
    negative_elbo = -float(keras.ops.convert_to_numpy(model.elbo(test)).mean())
    assert abs(negative_elbo - metrics["negative_elbo"]) < 3.0
