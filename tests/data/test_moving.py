import keras
import numpy as np
import pytest

from vaelib.cli import main
from vaelib.data import MovingDigits, load_digits_images, load_moving_mnist

SMALL = dict(frame_size=32, num_frames=12, digit_size=14, speed=(1.0, 3.0))


@pytest.fixture(scope="module")
def small():
    return MovingDigits(split="test", seed=3, **SMALL)


def test_clips_have_the_documented_shape_dtype_and_range(small):
    clips = small.clips(7)
    assert clips.shape == (7, 12, 32, 32, 1) and clips.dtype == np.float32
    assert clips.min() == 0.0 and clips.max() <= 1.0 and clips.max() > 0.5
    standard = MovingDigits(split="test").clips(2)
    assert standard.shape == (2, 20, 64, 64, 1)


def test_clip_i_depends_only_on_the_seed_and_i(small):
    many = small.clips(40)
    np.testing.assert_array_equal(small.clips(5), many[:5])
    np.testing.assert_array_equal(small.clips(6, start=30), many[30:36])
    again = MovingDigits(split="test", seed=3, **SMALL)
    np.testing.assert_array_equal(again.clips(40), many)
    other = MovingDigits(split="test", seed=4, **SMALL)
    assert not np.array_equal(other.clips(5), many[:5])


def test_every_digit_stays_inside_the_frame(small):
    positions = small.metadata(200)["positions"]
    free = small.frame_size - small.digit_size
    assert positions.min() >= 0 and positions.max() <= free
    corners = np.rint(positions)
    assert corners.min() >= 0 and corners.max() + small.digit_size <= small.frame_size


def test_velocity_is_constant_between_bounces_and_reflected_at_walls(small):
    info = small.metadata(200)
    free = small.frame_size - small.digit_size
    before, after = info["positions"][:, :, :-1], info["positions"][:, :, 1:]
    velocity = np.broadcast_to(info["velocity"][:, :, None], before.shape)
    # The velocity of each component flips at each bounce; follow its sign.
    signs = np.ones_like(before)
    for t in range(1, before.shape[2]):
        unconstrained = before[:, :, t - 1] + signs[:, :, t - 1] * velocity[:, :, t - 1]
        hit = (unconstrained < 0) | (unconstrained > free)
        signs[:, :, t] = np.where(hit, -signs[:, :, t - 1], signs[:, :, t - 1])
    moving = signs * velocity
    free_flight = before + moving
    reflected = np.where(free_flight < 0, -free_flight, free_flight)
    reflected = np.where(free_flight > free, 2 * free - free_flight, reflected)
    np.testing.assert_allclose(after, reflected, atol=1e-9)
    bounced = (free_flight < 0) | (free_flight > free)
    assert 0.05 < bounced.mean() < 0.5
    np.testing.assert_allclose((after - before)[~bounced], moving[~bounced], atol=1e-9)


def test_speed_is_the_requested_number_of_pixels_per_frame():
    clips = MovingDigits(split="test", speed=3.6)
    speed = np.linalg.norm(clips.metadata(50)["velocity"], axis=-1)
    np.testing.assert_allclose(speed, 3.6)


def test_rendered_digits_are_the_split_images_at_the_rounded_positions():
    single = MovingDigits(split="test", num_digits=1, num_frames=5, seed=2)
    test_images = load_digits_images("test").images[..., 0]
    train_rows = {row.tobytes() for row in load_digits_images("train").images[..., 0]}
    clips = single.clips_uint8(20)[..., 0]
    info = single.metadata(20)
    for clip, index, positions in zip(
        clips, info["digit_index"][:, 0], info["positions"][:, 0], strict=True
    ):
        row, column = np.rint(positions[3]).astype(int)
        patch = clip[3, row : row + 28, column : column + 28]
        np.testing.assert_array_equal(
            patch, np.round(test_images[index] * 255).astype("uint8")
        )
        assert test_images[index].tobytes() not in train_rows
    assert np.array_equal(single.labels, load_digits_images("test").labels)


def test_train_and_test_clips_share_no_digit_image():
    train = MovingDigits(split="train", num_frames=2)
    test = MovingDigits(split="test", num_frames=2)
    train_digits = {image.tobytes() for image in train.digits}
    assert not any(image.tobytes() in train_digits for image in test.digits)
    used = test.metadata(500)["digit_index"]
    assert used.max() < len(test.digits)


def test_digits_combine_by_maximum():
    square = np.zeros((1, 4, 4), "float32")
    square[0, 1:3, 1:3] = 0.6
    clips = MovingDigits(
        frame_size=6,
        digit_size=4,
        num_digits=2,
        num_frames=30,
        speed=0.7,
        digits=square,
        seed=0,
    )
    frames = clips.clips(50)
    # Two copies of a 0.6 square never add up beyond 0.6.
    assert np.isclose(frames.max(), 153 / 255)


def test_matches_tfds_image_as_moving_sequence_on_motion_and_bounds():
    tf = pytest.importorskip("tensorflow")
    from tensorflow_datasets.video import moving_sequence

    single = MovingDigits(split="test", num_digits=1, num_frames=20, seed=5)
    free = single.frame_size - single.digit_size
    info = single.metadata(6)
    ours = single.clips_uint8(6)
    for i in range(6):
        image = single._digits_uint8[info["digit_index"][i, 0]][..., None]
        theirs = moving_sequence.image_as_moving_sequence(
            tf.constant(image),
            sequence_length=20,
            output_size=(64, 64),
            velocity=tf.constant(info["velocity"][i, 0] / free, tf.float32),
            start_position=tf.constant(info["start_position"][i, 0] / free, tf.float32),
        )
        np.testing.assert_allclose(
            theirs.trajectory.numpy() * free, info["positions"][i, 0], atol=1e-3
        )
        # Same pixels, up to a frame where float32 rounding lands on .5 differently.
        same_frames = np.all(theirs.image_sequence.numpy() == ours[i], axis=(1, 2, 3))
        assert same_frames.mean() >= 0.9


def test_as_dataset_yields_the_documented_batches(small):
    tf = pytest.importorskip("tensorflow")
    dataset = small.as_dataset(num_clips=50, batch_size=8, shuffle=False)
    batches = list(dataset.as_numpy_iterator())
    assert [len(b) for b in batches] == [8] * 6 + [2]
    assert batches[0].dtype == np.float32 and batches[0].shape == (8, 12, 32, 32, 1)
    np.testing.assert_array_equal(np.concatenate(batches), small.clips(50))
    assert dataset.element_spec.dtype == tf.float32

    shuffled = small.as_dataset(num_clips=50, batch_size=50, shuffle=True)
    first, second = (next(iter(shuffled)).numpy() for _ in range(2))
    assert not np.array_equal(first, small.clips(50))
    np.testing.assert_array_equal(
        np.sort(first.sum(axis=(1, 2, 3, 4))),
        np.sort(small.clips(50).sum(axis=(1, 2, 3, 4))),
    )
    assert not np.array_equal(first, second)

    pairs = small.as_dataset(
        num_clips=16, batch_size=4, shuffle=False, context_frames=5
    )
    context, future = next(iter(pairs))
    assert tuple(context.shape) == (4, 5, 32, 32, 1) and tuple(future.shape) == (
        4,
        7,
        32,
        32,
        1,
    )
    np.testing.assert_array_equal(np.concatenate([context, future], 1), small.clips(4))


def test_a_dataset_trains_a_keras_model(small):
    pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data feeds every backend; checked once on TensorFlow")
    model = keras.Sequential(
        [keras.Input(small.clip_shape), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    pairs = small.as_dataset(num_clips=16, batch_size=4).map(
        lambda x: (x, x[:, 0, 0, 0])
    )
    # 16 clips in batches of 4: Keras knows the epoch is 4 steps long
    assert int(pairs.cardinality()) == 4
    history = model.fit(pairs, epochs=1, shuffle=False, verbose=0)  # shuffled already
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(frame_size=20, digit_size=28), "digit_size"),
        (dict(num_frames=0), "num_frames"),
        (dict(num_digits=0), "num_digits"),
        (dict(speed=-1.0), "speed"),
        (dict(speed=(3.0, 1.0)), "speed"),
        (dict(split="validation"), "split"),
        (dict(digits=np.zeros((5, 28), "float32")), "digits"),
        (dict(digits=np.full((5, 28, 28), 255.0)), "digits"),
        (dict(digits=np.array([["a"]])), "digits"),
        (dict(digits=np.zeros((3, 28, 28)), labels=[1, 2]), "label"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MovingDigits(**kwargs)


def test_bad_context_frames(small):
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="context_frames"):
        small.as_dataset(10, context_frames=12)


def test_official_moving_mnist_file_round_trips(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (20, 6, 64, 64), dtype=np.uint8)
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, frames)
    with pytest.raises(ValueError, match="published Moving MNIST file, sha256 c2a3e8"):
        load_moving_mnist(path)
    clips = load_moving_mnist(path, check_hash=False)
    assert clips.shape == (6, 20, 64, 64, 1) and clips.dtype == np.float32
    np.testing.assert_array_equal(
        np.round(clips[..., 0] * 255).astype("uint8"), frames.transpose(1, 0, 2, 3)
    )
    assert load_moving_mnist(path, max_clips=2, check_hash=False).shape == (
        2,
        20,
        64,
        64,
        1,
    )
    np.save(tmp_path / "bad.npy", frames.astype("float32"))
    with pytest.raises(ValueError, match="uint8"):
        load_moving_mnist(tmp_path / "bad.npy", check_hash=False)


def test_cli_writes_moving_digits_to_npz(tmp_path, capsys):
    out = tmp_path / "moving.npz"
    assert (
        main(
            [
                "data",
                "moving-digits",
                "--clips",
                "5",
                "--split",
                "test",
                "--frame-size",
                "32",
                "--digit-size",
                "14",
                "--num-frames",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with np.load(out) as arrays:
        assert (
            arrays["clips"].shape == (5, 4, 32, 32, 1)
            and arrays["clips"].dtype == np.uint8
        )
        assert arrays["labels"].shape == (5, 2) and arrays["velocity"].shape == (
            5,
            2,
            2,
        )
        expected = MovingDigits(
            split="test", frame_size=32, digit_size=14, num_frames=4
        )
        np.testing.assert_array_equal(arrays["clips"], expected.clips_uint8(5))
    assert "wrote 5 test clips" in capsys.readouterr().out
    assert (
        main(
            ["data", "moving-digits", "--clips", "5", "--out", str(tmp_path / "x.txt")]
        )
        == 2
    )


def test_scaled_keeps_moving_mnists_proportions():
    small = MovingDigits.scaled(32, num_frames=4, seed=3)
    assert (small.digit_size, small.speed) == (14, (1.8, 1.8))
    assert small.clip_shape == (4, 32, 32, 1)
    standard = MovingDigits.scaled(64, num_frames=3, seed=3)
    np.testing.assert_array_equal(
        standard.clips(2), MovingDigits(num_frames=3, seed=3).clips(2)
    )


def test_with_mnist_available_clips_use_its_train_and_test_digits(
    tmp_path, monkeypatch
):
    rng = np.random.default_rng(2)
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": np.arange(5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.arange(5, 9, dtype=np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.delenv("VAELIB_DIGITS_SOURCE", raising=False)
    monkeypatch.setenv("VAELIB_MNIST", str(tmp_path / "mnist.npz"))
    for split in ("train", "test"):
        clips = MovingDigits(num_frames=3, split=split, seed=4)
        assert clips.digit_source == "mnist-file"
        # The original recipe: 28x28 digits kept as they are, 64x64 frames.
        np.testing.assert_array_equal(clips._digits_uint8, arrays[f"x_{split}"])
        assert set(clips.metadata(20)["labels"].ravel()) <= set(arrays[f"y_{split}"])
        assert clips.clips(2).shape == (2, 3, 64, 64, 1)


# Stochastic moving digits (Denton & Fergus, 2018): a new direction at each bounce.
@pytest.fixture(scope="module")
def stochastic():
    return MovingDigits(split="test", seed=3, stochastic=True, **SMALL)


def _steps(info):
    """Displacements between frames and the velocity that produced each."""
    positions = info["positions"]
    return positions[:, :, 1:] - positions[:, :, :-1]


def test_stochastic_speed_is_constant_and_direction_changes_only_at_bounces(
    stochastic,
):
    info = stochastic.metadata(300)
    free = stochastic.frame_size - stochastic.digit_size
    positions, bounces = info["positions"], info["bounces"]
    assert positions.min() >= 0 and positions.max() <= free
    steps = _steps(info)
    speed = np.linalg.norm(info["velocity"], axis=-1)[:, :, None]
    # A step that hits no wall moves exactly `speed` pixels...
    free_steps = ~bounces[:, :, 1:]
    lengths = np.linalg.norm(steps, axis=-1)
    np.testing.assert_allclose(
        lengths[free_steps], np.broadcast_to(speed, lengths.shape)[free_steps]
    )
    # ...in the same direction as the step before, unless that step bounced.
    straight = free_steps[:, :, 1:] & ~bounces[:, :, 1:-1]
    np.testing.assert_allclose(steps[:, :, 1:][straight], steps[:, :, :-1][straight])
    assert bounces.mean() > 0.05
    # The direction after a bounce is new: not the mirror image of the old one.
    bounced = bounces[:, :, 1:-1] & free_steps[:, :, 1:]
    before, after = steps[:, :, :-1][bounced], steps[:, :, 1:][bounced]
    mirrored = np.isclose(np.abs(before), np.abs(after), atol=1e-6).all(-1)
    assert mirrored.mean() < 0.05


def test_stochastic_bounces_point_away_from_the_wall(stochastic):
    info = stochastic.metadata(300)
    free = stochastic.frame_size - stochastic.digit_size
    positions, bounces = info["positions"], info["bounces"]
    steps = _steps(info)
    # The velocity after a bounce (seen as the next free step) points into the
    # frame on each axis whose wall was hit: away from 0 near 0, from free near free.
    after = steps[:, :, 1:]
    usable = bounces[:, :, 1:-1] & ~bounces[:, :, 2:]
    at = positions[:, :, 1:-1]
    speed = np.linalg.norm(info["velocity"], axis=-1)[:, :, None, None]
    near_low = at < np.broadcast_to(speed, at.shape)
    near_high = at > free - np.broadcast_to(speed, at.shape)
    only_low = near_low & ~near_high & usable[..., None]
    only_high = near_high & ~near_low & usable[..., None]
    assert only_low.sum() > 20 and only_high.sum() > 20
    # a digit within one step of a wall after bouncing moves away from it, on
    # the axis that bounced (the other axis may point either way)
    wall_axis_low = only_low & (after > 0)
    wall_axis_high = only_high & (after < 0)
    assert (wall_axis_low.sum() + wall_axis_high.sum()) > 0.9 * (
        only_low.sum() + only_high.sum()
    )


def test_stochastic_clip_i_depends_only_on_the_seed_and_i(stochastic, small):
    many = stochastic.clips(40)
    np.testing.assert_array_equal(stochastic.clips(5), many[:5])
    np.testing.assert_array_equal(stochastic.clips(6, start=30), many[30:36])
    # The first frame and the first velocity are the deterministic clip's; the
    # paths part at the first bounce.
    deterministic = small.metadata(40)
    info = stochastic.metadata(40)
    np.testing.assert_array_equal(
        info["start_position"], deterministic["start_position"]
    )
    np.testing.assert_array_equal(info["velocity"], deterministic["velocity"])
    np.testing.assert_array_equal(many[:, 0], small.clips(40)[:, 0])
    first = np.argmax(info["bounces"].any(1), axis=-1)
    for clip in range(40):
        if first[clip] > 0:
            upto = first[clip]
            np.testing.assert_allclose(
                info["positions"][clip, :, :upto],
                deterministic["positions"][clip, :, :upto],
            )
    assert not np.array_equal(many, small.clips(40))


def test_deterministic_bounces_mark_the_reflections(small):
    # A second reading of the walls: a step bounced where the free flight from
    # the previous frame with the previous step's velocity leaves [0, free].
    info = small.metadata(200)
    free = small.frame_size - small.digit_size
    positions, bounces = info["positions"], info["bounces"]
    assert not bounces[:, :, 0].any()
    steps = _steps(info)
    velocity = np.broadcast_to(info["velocity"][:, :, None], steps.shape)
    # where no bounce happened the step is +-velocity on each axis
    quiet = ~bounces[:, :, 1:]
    np.testing.assert_allclose(np.abs(steps[quiet]), np.abs(velocity[quiet]))
    # where one happened, some axis's step is shorter than its speed
    loud = bounces[:, :, 1:]
    shorter = (np.abs(steps) < np.abs(velocity) - 1e-9).any(-1)
    np.testing.assert_array_equal(shorter[loud], True)
    assert positions.max() <= free


def test_a_digit_as_large_as_the_frame_stays_put():
    digits = np.ones((2, 14, 14), "float32")
    for stochastic in (False, True):
        clips = MovingDigits(
            frame_size=14,
            digit_size=14,
            num_frames=4,
            digits=digits,
            stochastic=stochastic,
        ).clips(2)
        np.testing.assert_array_equal(clips, 1.0)


def test_cli_writes_stochastic_clips_and_refuses_stochastic_images(tmp_path, capsys):
    out = tmp_path / "stochastic.npz"
    argv = ["data", "moving-digits", "--clips", "4", "--split", "test"]
    argv += ["--frame-size", "32", "--digit-size", "14", "--speed", "1.8"]
    assert main([*argv, "--stochastic", "--out", str(out)]) == 0
    assert "wrote 4 stochastic test clips" in capsys.readouterr().out
    expected = MovingDigits.scaled(32, split="test", stochastic=True)
    with np.load(out) as arrays:
        np.testing.assert_array_equal(arrays["clips"], expected.clips_uint8(4))
        np.testing.assert_array_equal(
            arrays["bounces"], expected.metadata(4)["bounces"]
        )
    image = ["train", "--model", "mlp", "--source", "sklearn", "--stochastic"]
    assert main([*image, "--out", str(tmp_path / "run")]) == 2
    assert "--stochastic applies to --data moving-digits" in capsys.readouterr().err
