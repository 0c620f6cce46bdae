import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vaelib import viz  # noqa: E402


@pytest.fixture
def images():
    return np.random.default_rng(0).random((12, 8, 8, 1)).astype("float32")


def test_image_grid_places_every_image(images):
    fig = viz.image_grid(images, columns=5)
    canvas = fig.axes[0].images[0].get_array()
    assert canvas.shape == (3 * 9 - 1, 5 * 9 - 1)
    np.testing.assert_allclose(canvas[9:17, 9:17], images[6, ..., 0])


def test_image_grid_rejects_values_outside_the_unit_interval(images):
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        viz.image_grid(images * 3)


def test_latent_plots(images):
    rng = np.random.default_rng(1)
    fig = viz.latent_scatter(rng.normal(size=(50, 2)), rng.integers(0, 10, 50))
    assert fig.axes[0].get_xlabel() == "$z_1$"
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        viz.latent_scatter(rng.normal(size=(50, 3)), rng.integers(0, 10, 50))
    decoded = []

    def decode(z):
        decoded.append(z)
        return np.full((len(z), 8, 8, 1), 0.5, "float32")

    viz.latent_manifold(decode, grid_size=4)
    assert decoded[0].shape == (16, 2) and decoded[0].max() == pytest.approx(2.5)
    fig = viz.latent_traversal(decode, np.zeros(3), dims=[0, 2])
    assert len(fig.axes) == 2


def test_loss_curves_plot_each_key():
    history = {"loss": [3.0, 2.0], "kl": [1.0, 1.5], "val_loss": [3.1, 2.2]}
    fig = viz.loss_curves(history)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["loss", "val_loss", "kl"]


def test_videos(tmp_path):
    from PIL import Image

    clip = np.random.default_rng(0).random((5, 16, 16, 1)).astype("float32")
    html = viz.show_video([clip, 1 - clip], labels=["input", "inverse"])
    assert "<script" in html.data and html.data.count("data:image/png") == 5
    path = viz.save_gif(clip, tmp_path / "clip.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 5
    fig = viz.frame_strip(np.stack([clip, clip]), labels=["a", "b"], every=2)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="equal length"):
        viz.show_video([clip, clip[:3]])


def test_the_video_player_needs_no_network():
    """matplotlib's player loads Font Awesome from a CDN for its buttons; offline
    (a notebook, the course's website) they were blank and the browser logged
    an error. show_video's player fetches nothing and labels every button."""
    import re

    html = viz.show_video(np.zeros((3, 8, 8))).data
    assert not re.search(r"(src|href)=\s*\"?https?://", html), "fetches from a server"
    buttons = re.findall(r"<button[^>]*>(.*?)</button>", html, flags=re.S)
    assert len(buttons) == 9
    assert all(re.sub(r"\s", "", label) for label in buttons), "a blank button"
    assert "fa fa-" not in html
