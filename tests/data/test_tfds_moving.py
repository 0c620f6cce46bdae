import keras
import numpy as np
import pytest

from vaelib.data import MovingDigits

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the TFDS builder is TensorFlow code under any Keras backend; tested once",
)
def test_tfds_load_builds_moving_digits_offline(tmp_path):
    import vaelib.data.tfds_moving  # noqa: F401 - registers the builder

    train, info = tfds.load(
        "moving_digits/small", split="train", data_dir=str(tmp_path), with_info=True
    )
    assert info.splits["train"].num_examples == 2000
    assert info.splits["test"].num_examples == 400
    assert set(
        tfds.builder("moving_digits", data_dir=str(tmp_path)).builder_configs
    ) == {"small", "standard", "small_stochastic", "standard_stochastic"}
    test = tfds.load(
        "moving_digits/small",
        split="test[:4]",
        data_dir=str(tmp_path),
        shuffle_files=False,
    )
    examples = sorted(tfds.as_numpy(test), key=lambda e: -e["velocity"].sum())
    example = next(iter(tfds.as_numpy(train)))
    assert (
        example["video"].shape == (10, 32, 32, 1) and example["video"].dtype == np.uint8
    )
    assert example["labels"].shape == (2,) and example["velocity"].shape == (2, 2)

    expected = MovingDigits(
        frame_size=32, num_frames=10, digit_size=14, speed=1.8, split="test", seed=1
    )
    clips = expected.clips_uint8(400)
    velocity = expected.metadata(400)["velocity"]
    for e in examples:
        match = np.flatnonzero(
            np.all(np.abs(velocity - e["velocity"]) < 1e-6, axis=(1, 2))
        )
        assert len(match) == 1
        np.testing.assert_array_equal(e["video"], clips[match[0]])

    stochastic = tfds.load(
        "moving_digits/small_stochastic",
        split="test[:3]",
        data_dir=str(tmp_path),
        shuffle_files=False,
    )
    expected = MovingDigits.scaled(
        32, num_frames=10, split="test", seed=1, stochastic=True
    )
    clips, info = expected.clips_uint8(400), expected.metadata(400)
    for e in tfds.as_numpy(stochastic):
        match = np.flatnonzero(
            np.all(np.abs(info["velocity"] - e["velocity"]) < 1e-6, axis=(1, 2))
        )
        assert len(match) == 1
        np.testing.assert_array_equal(e["video"], clips[match[0]])
        np.testing.assert_array_equal(e["bounces"], info["bounces"][match[0]])
