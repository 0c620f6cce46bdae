"""Compression baselines (issue 17): real codecs, bits counted without headers."""

import io

import numpy as np
import pytest
from PIL import Image

from vaelib.metrics import jpeg_round_trip, psnr, video_codec_round_trip


def moving_square(n=2, frames=6, size=16):
    """An 8x8 square shaded top to bottom, one pixel to the right per frame."""
    clips = np.zeros((n, frames, size, size, 1), "float32")
    shade = np.linspace(0.2, 1.0, 8)[:, None, None]  # (rows, 1, channels)
    for t in range(frames):
        clips[:, t, 4:12, 2 + t : 10 + t] = shade
    clips[1] *= 0.6
    return clips


def available(codec):
    av = pytest.importorskip("av")
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec}")


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_higher_quality_costs_more_bits_and_gives_higher_psnr(codec):
    available(codec)
    clips = moving_square(size=32)  # SVT-AV1 takes frames of 32x32 and more
    low, high = (video_codec_round_trip(clips, codec, crf=crf) for crf in (50, 20))
    assert low["decoded"].shape == clips.shape and low["decoded"].dtype == "float32"
    assert (high["bits_per_frame"] > low["bits_per_frame"]).all()
    assert psnr(clips, high["decoded"]).mean() > psnr(clips, low["decoded"]).mean()
    # the stream headers do not depend on the quality and are counted apart
    assert (low["header_bits_per_frame"] > 0).all()
    np.testing.assert_allclose(
        low["header_bits_per_frame"], high["header_bits_per_frame"], rtol=0.05
    )


def test_x264_counts_coded_frames_not_its_settings_string():
    available("libx264")
    clips = moving_square()
    result = video_codec_round_trip(clips, "libx264", crf=30)
    # x264 writes its ~600-byte settings into an SEI message of the first packet
    assert (result["header_bits_per_frame"] * 6 / 8 > 400).all()
    assert (result["bits_per_frame"] * 6 / 8 < 400).all()


def test_jpeg_counts_only_the_scan_data():
    clips = moving_square()
    result = jpeg_round_trip(clips, quality=75)
    frame = np.round(clips[0, 0, ..., 0] * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=75)
    data = buffer.getvalue()
    scan = data.index(b"\xff\xda")  # start of scan; its header is 2 + 8 bytes
    scan_bytes = len(data) - (scan + 2 + 8) - 2  # without the end-of-image marker
    header_bytes = len(data) - scan_bytes
    assert result["header_bits_per_frame"][0] == 8 * header_bytes
    # every frame pays the same header: file sizes minus the counted bits
    assert result["header_bits_per_frame"][1] == 8 * header_bytes
    assert result["bits_per_frame"].mean() < 8 * header_bytes
    decoded = np.asarray(Image.open(buffer)) / 255.0
    np.testing.assert_allclose(result["decoded"][0, 0, ..., 0], decoded, atol=1e-6)


def test_jpeg_higher_quality_costs_more_bits_and_gives_higher_psnr():
    clips = moving_square()
    low, high = (jpeg_round_trip(clips, quality=q) for q in (10, 90))
    assert (high["bits_per_frame"] > low["bits_per_frame"]).all()
    assert psnr(clips, high["decoded"]).mean() > psnr(clips, low["decoded"]).mean()


def test_bad_inputs_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"clips in \[0, 1\]"):
        jpeg_round_trip(moving_square() * 2)
    with pytest.raises(ValueError, match="quality <= 95"):
        jpeg_round_trip(moving_square(), quality=100)
    pytest.importorskip("av")
    with pytest.raises(ValueError, match="even height and width"):
        video_codec_round_trip(np.zeros((1, 2, 15, 16, 1), "float32"))
    with pytest.raises(ValueError, match="at least 32x32 for libsvtav1"):
        video_codec_round_trip(moving_square(), codec="libsvtav1")
    with pytest.raises(ValueError, match="Expected codec in"):
        video_codec_round_trip(moving_square(), codec="mpeg2video")
