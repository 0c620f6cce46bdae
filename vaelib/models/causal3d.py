"""A causal 3-D convolutional video VAE: the tokenizer of latent video diffusion.

Today's video generators (CogVideoX, HunyuanVideo, Wan, Cosmos, Open-Sora)
do not model pixels: they encode clips with a VAE that compresses time as
well as space, and generate in its latent space. Their VAEs share three
ideas, which `CausalVideoVAE` keeps at the size of the course's digits:

- **Causal in time.** Every temporal convolution is a `CausalConv3D`, padded
  only on the past, so latent frame `j` depends on input frames up to
  `r * j` only, and a long video can be encoded chunk by chunk with a small
  cache per layer (`encode_chunked`) with exactly the result of encoding it
  whole.
- **The first frame alone.** Temporal downsampling by 2 with a causal
  kernel of 3 turns `T` frames into `1 + (T - 1) / 2`: latent frame 0 sees
  frame 0 only (an image is a one-frame video), each later latent frame a
  group of 2 new frames. Two such steps give `r = 4`: 17 frames become 5
  latent frames.
- **Temporal compression.** A diffusion model's cost grows with its number
  of latent frames, so they are 4 times fewer than the frames.

To train on a laptop CPU, the spatial downsampling is 2-D and per frame
(strided `Conv2D` through `PerFrame`), and the 3-D causal convolutions work
at the low resolution only: a (2+1)-D factorisation, as many video tokenizers
use (a full-resolution 3-D design trained about 4 times slower here; see
`benchmarks/README.md`).
"""

import keras
import numpy as np
from keras import ops

from vaelib import _arguments
from vaelib.layers import (
    CausalConv3D,
    CausalResBlock3D,
    DepthToTime,
    GaussianHead,
    PerFrame,
)
from vaelib.models.base import VAE, builds_in_its_policy
from vaelib.models.video import _check_clip_shape


def _check_sizes(input_shape, filters, temporal_downsamples):
    # (num_frames, height, width, channels), height and width divisible by
    # 2 ** len(filters), as for the other video models; then 1 + r k frames
    input_shape = _check_clip_shape(input_shape, filters)
    num_frames = input_shape[0]
    r = 2**temporal_downsamples
    if (num_frames - 1) % r:
        raise ValueError(
            f"Expected num_frames = 1 + a multiple of {r} (the first frame alone, "
            f"then groups of 2 ** temporal_downsamples frames), e.g. "
            f"{1 + r * max(1, (num_frames - 1) // r)}. "
            f"Received: input_shape={input_shape}, "
            f"temporal_downsamples={temporal_downsamples}"
        )
    return input_shape


def _networks(input_shape, latent_dim, filters, temporal_downsamples, res_blocks):
    frames, height, width, channels = input_shape
    width_t = filters[-1]
    factor = 2 ** len(filters)
    r = 2**temporal_downsamples

    inputs = keras.Input(shape=input_shape, name="clip")
    x = inputs
    for i, f in enumerate(filters):  # per-frame spatial downsampling, 2-D
        x = PerFrame(
            keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="silu"),
            name=f"down_{i}",
        )(x)
    for i in range(temporal_downsamples):  # causal temporal downsampling, 3-D
        x = CausalConv3D(width_t, 3, strides=(2, 1, 1), name=f"time_down_{i}")(x)
        for j in range(res_blocks):
            x = CausalResBlock3D(name=f"encoder_block_{i}_{j}")(x)
    x = keras.layers.Activation("silu", name="encoder_out")(x)
    z_mean, z_log_var = GaussianHead(latent_dim, name="posterior")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")

    latent_shape = (
        1 + (frames - 1) // r,
        height // factor,
        width // factor,
        latent_dim,
    )
    latent = keras.Input(shape=latent_shape, name="z")
    x = CausalConv3D(width_t, 3, name="decoder_in")(latent)
    for i in range(temporal_downsamples):  # causal temporal upsampling
        for j in range(res_blocks):
            x = CausalResBlock3D(name=f"decoder_block_{i}_{j}")(x)
        x = CausalConv3D(2 * width_t, 3, activation="silu", name=f"time_up_{i}")(x)
        x = DepthToTime(2, name=f"depth_to_time_{i}")(x)
    for i, f in enumerate(reversed(filters)):  # per-frame spatial upsampling
        x = PerFrame(
            keras.layers.Conv2DTranspose(
                f, 3, strides=2, padding="same", activation="silu"
            ),
            name=f"up_{i}",
        )(x)
    outputs = PerFrame(
        keras.layers.Conv2D(channels, 3, padding="same"), name="pixel_logits"
    )(x)
    decoder = keras.Model(latent, outputs, name="decoder")
    return encoder, decoder


@keras.saving.register_keras_serializable(package="vaelib")
class CausalVideoVAE(VAE):
    """A causal 3-D convolutional VAE that compresses time 4x and space 4x.

    Encoder: per-frame strided convolutions (space), then
    `temporal_downsamples` causal 3-D convolutions of temporal stride 2, each
    followed by `res_blocks` `CausalResBlock3D`s, then a `GaussianHead`: the
    mean and log-variance of a latent clip of `1 + (T - 1) / r` frames,
    `r = 2 ** temporal_downsamples`. Decoder: the mirror, with `DepthToTime`
    for causal temporal upsampling and per-frame transposed convolutions to
    pixel logits (Bernoulli likelihood). The loss is the ELBO with the KL
    summed over latent frames, positions and channels; a small `beta` trades
    the smooth latent space for sharper reconstructions, as tokenizers for
    diffusion do. The sizes are the model's config, so a saved model
    rebuilds itself.

    Args:
        input_shape: `(num_frames, height, width, channels)` with
            `num_frames = 1 + r * k` (17 for `r = 4`) and height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Channels of the latent clip.
        filters: Filters of the per-frame strided convolutions, encoder
            order; the causal 3-D layers use `filters[-1]`.
        temporal_downsamples: Halvings of time (2: `r = 4`).
        res_blocks: Causal residual blocks per temporal level.
        seed: Seed of the sampling noise.
        beta: Weight of the KL term, see `VAE`.
        free_bits: Free nats per latent channel, see `VAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> model = CausalVideoVAE(input_shape=(9, 16, 16, 1), latent_dim=4)
    >>> model.latent_shape
    (3, 4, 4, 4)

    Introduced in: course/12_causal_video_vae.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(17, 32, 32, 1),
        latent_dim=16,
        filters=(16, 32),
        temporal_downsamples=2,
        res_blocks=1,
        seed=None,
        beta=1.0,
        **kwargs,
    ):
        filters = _arguments.positive_ints("filters", filters)
        temporal_downsamples = _arguments.positive_int(
            "temporal_downsamples", temporal_downsamples
        )
        input_shape = _check_sizes(input_shape, filters, temporal_downsamples)
        latent_dim = _arguments.positive_int("latent_dim", latent_dim)
        res_blocks = _arguments.integer("res_blocks", res_blocks, minimum=0)
        encoder, decoder = _networks(
            input_shape, latent_dim, filters, temporal_downsamples, res_blocks
        )
        kwargs.setdefault("name", "causal_video_vae")
        super().__init__(encoder, decoder, beta=beta, seed=seed, **kwargs)
        self.latent_dim = latent_dim
        self.filters = filters
        self.temporal_downsamples = temporal_downsamples
        self.res_blocks = res_blocks

    @property
    def temporal_factor(self):
        """`r`: frames per latent frame after the first."""
        return 2**self.temporal_downsamples

    def latent_numbers_per_frame(self):
        """Latent numbers (means) per video frame: the size of the code."""
        return float(np.prod(self.latent_shape)) / self.data_shape[0]

    def encode_chunked(self, clips, chunk_frames):
        """Encodes clips chunk by chunk, carrying each layer's causal cache.

        The first chunk holds the first frame and the frames left over by
        `(num_frames - 1) % chunk_frames`, every later chunk `chunk_frames`
        frames (CogVideoX splits the same way), so each chunk completes whole
        latent frames. Only the current chunk and a few frames per layer are
        in memory; the result equals `encode(clips)` to float tolerance.

        Args:
            clips: `(batch, num_frames, height, width, channels)`; any
                `num_frames = 1 + r * k`, also longer than the model's.
            chunk_frames: Frames per chunk, a multiple of `r`.

        Returns:
            `(z_mean, z_log_var)` as NumPy arrays, as `encode` returns.
        """
        chunk_frames = _arguments.positive_int("chunk_frames", chunk_frames)
        r = self.temporal_factor
        if chunk_frames % r:
            raise ValueError(
                f"Expected chunk_frames a multiple of {r} (the temporal factor). "
                f"Received: chunk_frames={chunk_frames}"
            )
        clips = np.asarray(clips, dtype="float32")
        if clips.ndim != 5 or (clips.shape[1] - 1) % r:
            raise ValueError(
                f"Expected clips of shape (batch, 1 + {r} * k, height, width, "
                f"channels). Received: clips of shape {clips.shape}"
            )
        num_frames = clips.shape[1]
        first = 1 + (num_frames - 1) % chunk_frames
        bounds = [0, first, *range(first + chunk_frames, num_frames + 1, chunk_frames)]
        layers = self.encoder.layers[1:]  # a chain, after the InputLayer
        caches = [None] * len(layers)
        means, log_vars = [], []
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            x = ops.convert_to_tensor(clips[:, start:stop])
            for i, layer in enumerate(layers):
                if isinstance(layer, GaussianHead):
                    mean, log_var = layer(x)
                    means.append(ops.convert_to_numpy(mean))
                    log_vars.append(ops.convert_to_numpy(log_var))
                elif hasattr(layer, "stream"):
                    x, caches[i] = layer.stream(x, caches[i])
                else:  # per-frame: no state across frames
                    x = layer(x)
        return np.concatenate(means, axis=1), np.concatenate(log_vars, axis=1)

    def get_config(self):
        config = self._vae_config()
        # Bernoulli pixels only: not arguments of this model.
        del config["likelihood"], config["decoder_log_var"]
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "temporal_downsamples": self.temporal_downsamples,
                "res_blocks": self.res_blocks,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def causal_video_vae(
    input_shape=(17, 32, 32, 1),
    latent_dim=16,
    filters=(16, 32),
    temporal_downsamples=2,
    res_blocks=1,
    seed=None,
    beta=1.0,
    **kwargs,
):
    """Builds a `CausalVideoVAE`: a causal 3-D convolutional video VAE.

    Args:
        input_shape, latent_dim, filters, temporal_downsamples, res_blocks,
            seed, beta: see `CausalVideoVAE`.
        **kwargs: `free_bits` (see `VAE`) and the standard `keras.Model`
            arguments (`name`, `dtype`).

    Returns:
        A `CausalVideoVAE`, not yet compiled.

    Example:

    >>> model = causal_video_vae(input_shape=(17, 32, 32, 1))
    >>> model.latent_shape, round(model.latent_numbers_per_frame(), 1)
    ((5, 8, 8, 16), 301.2)

    Introduced in: course/12_causal_video_vae.ipynb
    """
    return CausalVideoVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        filters=filters,
        temporal_downsamples=temporal_downsamples,
        res_blocks=res_blocks,
        seed=seed,
        beta=beta,
        **kwargs,
    )
