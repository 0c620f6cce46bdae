"""Pictures of VAEs: image grids, latent spaces, loss curves and videos.

Every function takes numpy arrays (or tensors), draws with matplotlib and
returns the figure (or HTML); none calls `plt.show()`. Images and frames are
`(height, width, 1)` or `(height, width)` with values in [0, 1].
"""

import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation

from vaelib import _arguments


def _frames(array, name):
    array = np.asarray(array, dtype="float32")
    if array.ndim >= 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.size and (array.min() < -1e-6 or array.max() > 1 + 1e-6):
        raise ValueError(
            f"Expected `{name}` values in [0, 1]. "
            f"Received: min={array.min():.4g}, max={array.max():.4g}"
        )
    return array


def _clip_list(clips):
    """One clip `(frames, h, w[, 1])`, a batch `(n, frames, h, w, 1)` or a list."""
    if isinstance(clips, list | tuple):
        return list(clips)
    clips = np.asarray(clips)
    if clips.ndim == 5 or (clips.ndim == 4 and clips.shape[-1] != 1):
        return list(clips)
    return [clips]


def tile_images(images, columns=10):
    """Packs `images` `(n, h, w[, 1])` into one array, `columns` per row.

    One-pixel white gaps separate the images. Used by `image_grid` and by the
    TensorBoard sample logger in `vaelib.training`.
    """
    images = _frames(images, "images")
    if images.ndim != 3:
        raise ValueError(
            f"Expected images (n, height, width[, 1]). Received: {images.shape}"
        )
    n, height, width = images.shape
    columns = min(_arguments.positive_int("columns", columns), n)
    rows = -(-n // columns)
    canvas = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1), "float32")
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[
            r * (height + 1) : r * (height + 1) + height,
            c * (width + 1) : c * (width + 1) + width,
        ] = image
    return canvas


def image_grid(images, columns=10, titles=None, ax=None, cell_size=0.9):
    """Shows `images` `(n, h, w[, 1])` as one grid image, `columns` per row.

    Returns:
        The matplotlib figure.

    Introduced in: course/00_setup_and_data.ipynb
    """
    canvas = tile_images(images, columns)
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    if ax is None:
        _, ax = plt.subplots(figsize=(columns * cell_size, rows * cell_size))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if titles is not None:
        ax.set_title(titles)
    return ax.figure


def compare_grid(rows, labels, columns=10, cell_size=0.9):
    """Stacks several image sets (e.g. inputs, reconstructions) as labelled rows."""
    rows = [_frames(r, label)[:columns] for r, label in zip(rows, labels, strict=True)]
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(columns * cell_size, len(rows) * cell_size * 1.15)
    )
    for ax, images, label in zip(np.atleast_1d(axes), rows, labels, strict=True):
        image_grid(images, columns=columns, ax=ax)
        ax.set_title(label, loc="left", fontsize=10)
    fig.tight_layout()
    return fig


def latent_scatter(z, labels, ax=None, title="Latent means, coloured by digit"):
    """Scatter of 2-D latent points coloured by integer label, with a legend."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"Expected 2-D latent points (n, 2). Received: {z.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
    ax.legend(*points.legend_elements(), title="label", loc="best", fontsize=8)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return ax.figure


def latent_manifold(decode, grid_size=15, extent=2.5, ax=None):
    """Decodes a grid of 2-D latent points and shows the images in place.

    Args:
        decode: Function from latents `(n, 2)` to images `(n, h, w[, 1])`
            (e.g. `model.decode`).
        grid_size: Points per axis.
        extent: The grid spans `[-extent, extent]` on both axes (in prior
            standard deviations).
    """
    values = np.linspace(-extent, extent, grid_size, dtype="float32")
    z = np.stack(np.meshgrid(values, values[::-1]), axis=-1).reshape(-1, 2)
    images = _frames(np.asarray(decode(z)), "decoded images")
    fig = image_grid(images, columns=grid_size, ax=ax, cell_size=0.45)
    fig.axes[0].set_title(f"Decoded latent grid, $z_1, z_2 \\in [-{extent}, {extent}]$")
    return fig


def latent_traversal(decode, z, dims=None, values=(-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3)):
    """Varies one latent dimension at a time around `z` and decodes each step.

    Rows are dimensions, columns the values given to that dimension.
    """
    z = np.asarray(z, dtype="float32").reshape(1, -1)
    dims = range(z.shape[1]) if dims is None else dims
    rows = []
    for d in dims:
        batch = np.repeat(z, len(values), axis=0)
        batch[:, d] = values
        rows.append(_frames(np.asarray(decode(batch)), "decoded images"))
    fig = compare_grid(rows, [f"$z_{{{d + 1}}}$" for d in dims], columns=len(values))
    return fig


def loss_curves(history, keys=None, ax=None, title="Training curves"):
    """Plots Keras `History.history` (or a dict of lists) per epoch."""
    history = getattr(history, "history", history)
    keys = [k for k in history if not k.startswith("val_")] if keys is None else keys
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        epochs = np.arange(1, len(history[key]) + 1)
        (line,) = ax.plot(epochs, history[key], label=key)
        if f"val_{key}" in history:
            ax.plot(
                epochs,
                history[f"val_{key}"],
                "--",
                color=line.get_color(),
                label=f"val_{key}",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax.figure


def frame_strip(clips, labels=None, every=1, cell_size=0.8):
    """Frames of one or more clips as rows of a still figure (papers, TensorBoard).

    Args:
        clips: `(frames, h, w[, 1])` for one clip, or a list of them.
        labels: A label per clip, shown at the left of its row.
        every: Show every `every`-th frame.
    """
    clips = [_frames(c, "clips")[::every] for c in _clip_list(clips)]
    labels = labels or [""] * len(clips)
    fig = compare_grid(
        clips, labels, columns=max(len(c) for c in clips), cell_size=cell_size
    )
    return fig


def _animation(clips, labels, interval, scale):
    clips = [_frames(c, "clips") for c in clips]
    if len({len(c) for c in clips}) != 1:
        raise ValueError(
            f"Expected clips of equal length. Received: {[len(c) for c in clips]}"
        )
    height, width = clips[0].shape[1:3]
    fig, axes = plt.subplots(
        1,
        len(clips),
        figsize=(len(clips) * scale * width / 64, scale * height / 64 + 0.3),
        squeeze=False,
    )
    images = []
    for ax, clip, label in zip(axes[0], clips, labels, strict=True):
        images.append(ax.imshow(clip[0], cmap="gray", vmin=0, vmax=1))
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()

    def update(t):
        for image, clip in zip(images, clips, strict=True):
            image.set_data(clip[t])
        return images

    movie = animation.FuncAnimation(
        fig, update, frames=len(clips[0]), interval=interval, blit=True
    )
    plt.close(fig)
    return movie


def show_video(clips, labels=None, interval=120, scale=1.6):
    """Plays clips side by side in a notebook (an HTML/JavaScript animation).

    Args:
        clips: One clip `(frames, h, w[, 1])` or a list of equally long clips,
            e.g. `[input, reconstruction, prediction]`.
        labels: A title per clip.
        interval: Milliseconds per frame.

    Returns:
        An `IPython.display.HTML` object (shown when it is a cell's last value).

    Introduced in: course/06_video_data.ipynb
    """
    from IPython.display import HTML

    clips = _clip_list(clips)
    labels = labels or [""] * len(clips)
    movie = _animation(clips, labels, interval, scale)
    return HTML(_offline_controls(movie.to_jshtml(default_mode="loop")))


# Matplotlib's player draws its buttons with Font Awesome icons from a CDN:
# offline (in a notebook or on the course's website) the buttons are blank
# and the browser logs a failed request. Text symbols need no download.
_BUTTON_SYMBOLS = {
    "fa fa-minus": "&minus;",
    "fa fa-fast-backward": "|&#9664;&#9664;",
    "fa fa-step-backward": "|&#9664;",
    "fa fa-play fa-flip-horizontal": "&#9664;",
    "fa fa-pause": "&#10074;&#10074;",
    "fa fa-play": "&#9654;",
    "fa fa-step-forward": "&#9654;|",
    "fa fa-fast-forward": "&#9654;&#9654;|",
    "fa fa-plus": "+",
}


def _offline_controls(html):
    """The player's HTML without the CDN stylesheet, its icons as text."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    return re.sub(
        r'<i class="(fa [^"]*)"></i>',
        lambda icon: _BUTTON_SYMBOLS.get(icon.group(1), "&#183;"),
        html,
    )


def save_gif(clips, path, labels=None, interval=120, scale=1.6):
    """Writes clips side by side as an animated GIF (Pillow); returns the path."""
    clips = _clip_list(clips)
    labels = labels or [""] * len(clips)
    movie = _animation(clips, labels, interval, scale)
    movie.save(
        str(path), writer=animation.PillowWriter(fps=max(1, round(1000 / interval)))
    )
    return path
