"""Generation metrics (issue 16): statistics, frame FID, identity consistency."""

import numpy as np
import pytest

from vaelib.metrics import (
    digit_classifier,
    frame_fid,
    frechet_distance,
    generation_statistics,
    identity_consistency,
)


def moving_square(n=2, frames=5, size=12):
    clips = np.zeros((n, frames, size, size, 1), "float32")
    for t in range(frames):
        clips[:, t, 3 : 3 + 4, t : t + 4] = 1.0
    return clips


def test_generation_statistics_on_clips_known_by_hand():
    clips = moving_square()
    stats = generation_statistics(clips)
    assert stats["mean_pixel"] == pytest.approx(16 / 144)
    assert stats["ink_share"] == 1.0
    # a 4x4 square moved by one pixel overlaps itself on 12 of 16 pixels
    a, b = clips[0, 0].ravel(), clips[0, 1].ravel()
    assert stats["frame_correlation"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    frozen = np.repeat(clips[:, :1], 5, axis=1)
    assert generation_statistics(frozen)["frame_correlation"] == pytest.approx(1.0)
    dim = clips * 0.4
    assert generation_statistics(dim)["ink_share"] == 0.0
    black = np.zeros_like(clips)
    assert np.isnan(generation_statistics(black)["frame_correlation"])


def test_generation_statistics_refuses_bad_clips():
    with pytest.raises(ValueError, match="num_frames"):
        generation_statistics(np.zeros((2, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        generation_statistics(moving_square() * 2)


def test_frechet_distance_matches_the_closed_form_between_gaussians():
    rng = np.random.default_rng(0)
    mean_a, mean_b = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    a = mean_a + np.sqrt(var_a) * rng.standard_normal((200_000, 3))
    b = mean_b + np.sqrt(var_b) * rng.standard_normal((200_000, 3))
    # diagonal covariances: |m_a - m_b|^2 + sum (sqrt(v_a) - sqrt(v_b))^2
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum(
        (np.sqrt(var_a) - np.sqrt(var_b)) ** 2
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_with_full_covariances():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(4, 4))
    a = rng.standard_normal((100_000, 4)) @ mixing.T
    b = 2.0 * a[:50_000] + 1.0
    # b = 2 a + 1: S_b = 4 S_a, so the trace term is tr(S_a + 4 S_a - 4 S_a)
    expected = 4.0 + np.trace(np.cov(a, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(a, b[:, :3])


def test_frame_fid_is_small_for_the_same_clips_and_large_for_black_ones():
    classifier = digit_classifier(frame_size=12, feature_dim=8)
    rng = np.random.default_rng(2)
    clips = moving_square(n=6)
    clips = np.clip(clips + 0.2 * rng.random(clips.shape, "float32"), 0, 1)
    black = np.zeros_like(clips)
    same = frame_fid(clips, clips, classifier)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert frame_fid(clips, black, classifier) > 10 * max(same, 1e-6)
    with pytest.raises(ValueError, match="classifier"):
        frame_fid(np.zeros((2, 3, 16, 16, 1), "float32"), clips, classifier)


class FixedClassifier:
    """Reads a frame's digits from its first pixels: pixel k bright = digit k."""

    input_shape = (None, 4, 4, 1)

    def __call__(self, frames, training=False):
        return np.asarray(frames).reshape(len(frames), -1)[:, :10]


def clip_showing(*digit_sets):
    clip = np.zeros((len(digit_sets), 4, 4, 1), "float32")
    for t, digits in enumerate(digit_sets):
        for digit, probability in digits.items():
            clip[t].reshape(-1)[digit] = probability
    return clip


def test_identity_consistency_is_the_share_of_frames_with_the_clips_digits():
    steady = clip_showing(*[{3: 0.9, 5: 0.8}] * 4)
    morphing = clip_showing({3: 0.9, 5: 0.8}, {3: 0.9, 5: 0.8}, {7: 0.9}, {3: 0.9})
    # no digit above the threshold: the most probable one counts
    faint = clip_showing(*[{2: 0.3, 6: 0.1}] * 4)
    result = identity_consistency(
        np.stack([steady, morphing, faint]), FixedClassifier()
    )
    assert result["consistency"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    # least probable shown digit per frame, averaged
    expected_confidence = np.mean([0.8] * 4 + [0.8, 0.8, 0.9, 0.9] + [0.3] * 4)
    assert result["confidence"] == pytest.approx(expected_confidence)
