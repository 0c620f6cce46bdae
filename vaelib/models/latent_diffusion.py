"""Generation in a video VAE's latent space with flow matching (rectified flow).

`LatentFlow` learns the distribution of a frozen `CausalVideoVAE`'s latent
clips with a small 3-D convolutional velocity network, samples latents with
Euler steps and decodes them with the VAE: latent video diffusion (Rombach
et al., 2022; Blattmann et al., 2023) at the size of the moving digits.

Rectified flow (Liu et al., 2023; Lipman et al., 2023, "flow matching"):
draw a data latent `z0`, noise `eps ~ N(0, I)` and `t ~ U(0, 1)`; the point
`z_t = (1 - t) z0 + t eps` moves on a straight line from the data (t = 0) to
the noise (t = 1) with velocity `eps - z0`. A network `v(z_t, t)` is trained
to predict that velocity by least squares; its minimiser is
`E[eps - z0 | z_t, t]`, whose flow carries N(0, I) at t = 1 to the data's
distribution at t = 0. Sampling integrates `dz/dt = v(z, t)` from t = 1 down
to 0 (Euler steps here).
"""

import keras
import numpy as np
from keras import ops

from vaelib import _arguments
from vaelib.models.causal3d import CausalVideoVAE


def flow_matching_pair(z0, noise, t):
    """The point on the line from data to noise at time t, and its velocity.

    Args:
        z0: Data latents `(batch, ...)`.
        noise: N(0, I) draws of the same shape.
        t: Times in [0, 1], `(batch,)`.

    Returns:
        `(z_t, velocity)`: `(1 - t) z0 + t noise` and `noise - z0`.
    """
    t = ops.reshape(t, (-1,) + (1,) * (len(z0.shape) - 1))
    return (1 - t) * z0 + t * noise, noise - z0


def euler_sample(velocity, noise, steps):
    """Integrates `dz/dt = velocity(z, t)` from t = 1 (noise) to t = 0.

    Args:
        velocity: A function `(z, t) -> dz/dt`, `t` of shape `(batch,)`.
        noise: The starting points at t = 1, `(batch, ...)`.
        steps: Euler steps, equally spaced in t.

    Returns:
        The points at t = 0, a NumPy array.
    """
    steps = _arguments.positive_int("steps", steps)
    z = ops.convert_to_tensor(noise, "float32")
    batch = z.shape[0]
    for i in range(steps, 0, -1):
        t = ops.full((batch,), i / steps, "float32")
        z = z - velocity(z, t) / steps
    return ops.convert_to_numpy(z)


@keras.saving.register_keras_serializable(package="vaelib")
class TimeEmbedding(keras.layers.Layer):
    """Sinusoidal features of a time `t` in [0, 1] (Vaswani et al., 2017).

    `(batch,)` or `(batch, 1)` -> `(batch, dim)`: `sin` and `cos` of
    `1000 t` at `dim / 2` frequencies spaced geometrically from 1 to 1/10000,
    as diffusion models embed their noise level.
    """

    def __init__(self, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.dim = _arguments.positive_int("dim", dim)
        if self.dim % 2:
            raise ValueError(f"Expected an even dim. Received: dim={dim}")

    def call(self, t):
        t = ops.reshape(ops.cast(t, "float32"), (-1, 1)) * 1000.0
        half = self.dim // 2
        frequencies = ops.exp(
            -np.log(10000.0) * ops.arange(half, dtype="float32") / half
        )
        angles = t * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def velocity_network(latent_shape, width=64, blocks=2, time_dim=64, extra_channels=0):
    """A small 3-D convolutional network `(z_t, t) -> velocity`.

    Each block: a 3x3x3 convolution ("same", over latent frames and
    positions), the time's embedding added per channel, SiLU, a second
    convolution (zero-initialised, so the block starts as the identity), and
    a residual connection.

    Args:
        latent_shape: `(frames, height, width, channels)` of a latent clip.
        width: Channels inside the network.
        blocks: Residual blocks.
        time_dim: Size of the time embedding.
        extra_channels: Channels appended to `z_t` at the input (a mask of
            the frames that are given, for `LatentFlow`); the output has the
            latent's channels.
    """
    latent_shape = _arguments.positive_ints("latent_shape", latent_shape)
    width = _arguments.positive_int("width", width)
    blocks = _arguments.positive_int("blocks", blocks)
    extra_channels = _arguments.integer("extra_channels", extra_channels, minimum=0)
    input_shape = (*latent_shape[:-1], latent_shape[-1] + extra_channels)
    z = keras.Input(shape=input_shape, name="z_t")
    t = keras.Input(shape=(), name="t")
    embedding = TimeEmbedding(time_dim, name="time_embedding")(t)
    embedding = keras.layers.Dense(width, activation="silu", name="time_mlp")(embedding)
    x = keras.layers.Conv3D(width, 3, padding="same", name="stem")(z)
    for i in range(blocks):
        h = keras.layers.Conv3D(width, 3, padding="same", name=f"block_{i}_a")(
            keras.layers.Activation("silu")(x)
        )
        shift = keras.layers.Dense(width, name=f"block_{i}_time")(embedding)
        shift = keras.layers.Reshape((1, 1, 1, width))(shift)
        h = keras.layers.Activation("silu")(keras.layers.Add()([h, shift]))
        h = keras.layers.Conv3D(
            width, 3, padding="same", kernel_initializer="zeros", name=f"block_{i}_b"
        )(h)
        x = keras.layers.Add()([x, h])
    x = keras.layers.Activation("silu")(x)
    velocity = keras.layers.Conv3D(latent_shape[-1], 3, padding="same", name="out")(x)
    return keras.Model([z, t], velocity, name="velocity_network")


@keras.saving.register_keras_serializable(package="vaelib")
class LatentFlow(keras.Model):
    """Rectified flow over the latent clips of a frozen `CausalVideoVAE`.

    Training (`fit(clips)`, or faster `fit(flow.latents(clips))`: the VAE is
    frozen, so its latents can be computed once): each clip is encoded to its
    posterior mean,
    multiplied by `latent_scale` (set by `adapt` to one over the means'
    standard deviation, so the latents have unit variance as the noise does,
    as latent diffusion scales them), and the velocity network learns
    `noise - z0` from `z_t = (1 - t) z0 + t noise` by least squares. With
    probability `context_rate` the first `k` latent frames (`k` drawn from 1
    to all but one) are given clean and flagged in an extra mask channel, and
    the loss covers only the others: one network both generates clips
    (`sample`) and continues a context (`predict_future`).

    The VAE is part of the model (saved with it) and never trained here.

    Args:
        vae: A `CausalVideoVAE` (trained).
        num_frames: Frames of the clips this model generates, `1 + r k`
            (`r` the VAE's temporal factor); the VAE's by default. Another
            length gets a copy of the VAE built for it, with its weights.
        width, blocks, time_dim: Sizes of the velocity network.
        context_rate: Share of training clips that get a context.
        seed: Seed of the training noise.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Example:

    >>> vae = CausalVideoVAE(input_shape=(5, 8, 8, 1), latent_dim=2, filters=(4,),
    ...                      temporal_downsamples=1)
    >>> flow = LatentFlow(vae, width=8, blocks=1)
    >>> flow.latent_shape
    (3, 4, 4, 2)
    >>> flow.sample(2, seed=0, steps=2).shape
    (2, 5, 8, 8, 1)
    """

    def __init__(
        self,
        vae,
        num_frames=None,
        width=64,
        blocks=2,
        time_dim=64,
        context_rate=0.5,
        seed=None,
        **kwargs,
    ):
        if not isinstance(vae, CausalVideoVAE):
            raise ValueError(
                "Expected vae to be a CausalVideoVAE. "
                f"Received: vae of type {type(vae).__name__}"
            )
        kwargs.setdefault("name", "latent_flow")
        super().__init__(**kwargs)
        r = vae.temporal_factor
        num_frames = _arguments.positive_int(
            "num_frames", vae.data_shape[0] if num_frames is None else num_frames
        )
        if (num_frames - 1) % r:
            raise ValueError(
                f"Expected num_frames = 1 + {r} * k (the VAE's temporal factor is "
                f"{r}). Received: num_frames={num_frames}"
            )
        self.context_rate = _arguments.in_range("context_rate", context_rate, 0, 1)
        if num_frames != vae.data_shape[0]:
            # the same weights at another clip length: every layer is
            # convolutional in time, only the networks' input shapes differ
            config = {
                **vae.get_config(),
                "input_shape": [num_frames, *vae.data_shape[1:]],
            }
            resized = CausalVideoVAE.from_config(config)
            resized.set_weights(vae.get_weights())
            vae = resized
        self.vae = vae
        # frozen: a deserialised VAE's networks come back trainable even when
        # the VAE itself does not, so each is frozen by name
        for network in (vae.encoder, vae.decoder, vae):
            network.trainable = False
        self.num_frames = num_frames
        self.latent_shape = (1 + (num_frames - 1) // r, *vae.latent_shape[1:])
        if self.latent_shape[0] < 2 and self.context_rate > 0:
            raise ValueError(
                "Expected num_frames long enough for two latent frames when "
                f"context_rate > 0. Received: num_frames={num_frames}"
            )
        self.width, self.blocks, self.time_dim = width, blocks, time_dim
        self.velocity = velocity_network(
            self.latent_shape, width, blocks, time_dim, extra_channels=1
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.latent_scale = self.add_weight(
            shape=(),
            initializer="ones",
            trainable=False,
            dtype="float32",
            name="latent_scale",
        )
        self.built = True

    @property
    def clip_shape(self):
        """Shape of one generated clip: `(num_frames, height, width, channels)`."""
        return (self.num_frames, *self.vae.data_shape[1:])

    def _check_clips(self, name, clips, frames=None):
        clips = np.asarray(ops.convert_to_numpy(clips))
        expected = self.vae.data_shape[1:]
        if (
            clips.ndim != 5
            or clips.shape[2:] != expected
            or (frames is not None and clips.shape[1] != frames)
        ):
            wanted = "num_frames" if frames is None else str(frames)
            raise ValueError(
                f"Expected {name} of shape (batch_size, {wanted}, "
                f"{', '.join(map(str, expected))}). Received: shape={clips.shape}"
            )
        return _arguments.unit_interval(name, clips).astype("float32")

    def latents(self, clips, batch_size=64):
        """The scaled posterior means of clips: what the flow models."""
        clips = self._check_clips("clips", clips, frames=self.num_frames)
        means = [
            ops.convert_to_numpy(self.vae.encoder(clips[i : i + batch_size])[0])
            for i in range(0, len(clips), batch_size)
        ]
        return np.concatenate(means) * float(self.latent_scale.numpy())

    def adapt(self, clips):
        """Sets `latent_scale` to one over the std of the clips' latent means."""
        self.latent_scale.assign(1.0)
        std = float(np.std(self.latents(clips)))
        if not std > 0:
            raise ValueError("Expected clips whose latent means vary. Received: std=0")
        self.latent_scale.assign(1.0 / std)
        return 1.0 / std

    def _frame_mask(self, known):
        """`(batch, frames, 1, 1, 1)`: 1 on clip i's first `known[i]` latent frames."""
        frames = self.latent_shape[0]
        positions = ops.arange(frames, dtype="float32")[None, :]
        mask = ops.cast(
            positions < ops.reshape(ops.cast(known, "float32"), (-1, 1)), "float32"
        )
        return ops.reshape(mask, (-1, frames, 1, 1, 1))

    def _velocity(self, z, t, mask, training=False):
        """The network's velocity at `z` (its given frames clean), mask appended."""
        channel = ops.broadcast_to(mask, (*ops.shape(z)[:-1], 1))
        return self.velocity(
            [ops.concatenate([z, channel], axis=-1), t], training=training
        )

    def call(self, clips, training=False):
        if tuple(clips.shape[1:]) == self.latent_shape:
            z0 = ops.cast(clips, "float32")  # latents(clips), computed once
        else:
            z0 = self.vae.encoder(clips, training=False)[0]
            z0 = ops.stop_gradient(ops.cast(z0, "float32")) * self.latent_scale
        batch = ops.shape(z0)[0]
        t = keras.random.uniform((batch,), seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(z0), seed=self.seed_generator)
        # with probability context_rate, 1 to F - 1 first latent frames given
        given = keras.random.uniform((batch,), seed=self.seed_generator)
        counts = 1 + ops.floor(
            keras.random.uniform((batch,), seed=self.seed_generator)
            * (self.latent_shape[0] - 1)
        )
        known = ops.where(given < self.context_rate, counts, ops.zeros_like(counts))
        mask = self._frame_mask(known)
        z_t, target = flow_matching_pair(z0, noise, t)
        z_in = mask * z0 + (1 - mask) * z_t
        return self._velocity(z_in, t, mask, training=training), target, mask

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        velocity, target, mask = y_pred
        error = ops.square(ops.cast(velocity, "float32") - target) * (1 - mask)
        counted = ops.sum(
            ops.broadcast_to(1 - mask, ops.shape(error)), axis=(1, 2, 3, 4)
        )
        per_clip = ops.sum(error, axis=(1, 2, 3, 4)) / ops.maximum(counted, 1.0)
        return ops.mean(per_clip)

    def _generate(self, given, steps, seed):
        """Euler-integrates the latent clips whose first frames are given."""
        known = given.shape[1]
        n = given.shape[0]
        noise = (
            np.random.default_rng(seed)
            .standard_normal((n, *self.latent_shape))
            .astype("float32")
        )
        z = noise.copy()
        z[:, :known] = given
        mask = self._frame_mask(np.full((n,), known, "float32"))

        def velocity(z, t):  # zero on the given frames: they stay as given
            return self._velocity(z, t, mask) * (1 - mask)

        z = euler_sample(velocity, z, steps)
        clips = self.vae.decode(z / float(self.latent_scale.numpy()))
        return np.clip(ops.convert_to_numpy(clips), 0.0, 1.0)

    def sample(self, n, seed=None, steps=20):
        """Generates `n` clips: Euler steps from noise, decoded by the VAE.

        Args:
            n: Number of clips.
            seed: Integer seed; the same seed gives the same clips.
            steps: Euler steps from t = 1 to 0.

        Returns:
            Numpy float32 `(n, num_frames, height, width, channels)` in [0, 1].
        """
        n = _arguments.positive_int("n", n)
        steps = _arguments.positive_int("steps", steps)
        given = np.zeros((n, 0, *self.latent_shape[1:]), "float32")
        return self._generate(given, steps, seed)

    def predict_future(self, context, num_future, seed=None, steps=20):
        """Samples one future of `num_future` frames for each context clip.

        The causal VAE encodes the first `1 + r m` context frames (the most
        that fill whole latent frames; a longer context's last frames are
        regenerated) to `1 + m` latent frames, which stay fixed while the
        flow fills in the rest of the clip.

        Args:
            context: Clips `(batch, context_frames, height, width, channels)`
                in [0, 1], at least one frame.
            num_future: Frames to generate after the context; the context
                and the future must fit in `num_frames`.
            seed: Integer seed.
            steps: Euler steps.

        Returns:
            Numpy float32 `(batch, num_future, height, width, channels)`.
        """
        context = self._check_clips("context", context)
        num_future = _arguments.positive_int("num_future", num_future)
        frames = context.shape[1]
        if frames < 1 or frames + num_future > self.num_frames:
            raise ValueError(
                f"Expected context_frames >= 1 and context_frames + num_future <= "
                f"{self.num_frames} (num_frames). Received: context_frames={frames}, "
                f"num_future={num_future}"
            )
        steps = _arguments.positive_int("steps", steps)
        r = self.vae.temporal_factor
        used = 1 + r * ((frames - 1) // r)
        given = self.vae.encode_chunked(context[:, :used], chunk_frames=r)[0]
        given = given * float(self.latent_scale.numpy())
        clips = self._generate(given, steps, seed)
        return clips[:, frames : frames + num_future]

    def get_config(self):
        return {
            **super().get_config(),
            "vae": keras.saving.serialize_keras_object(self.vae),
            "num_frames": self.num_frames,
            "width": self.width,
            "blocks": self.blocks,
            "time_dim": self.time_dim,
            "context_rate": self.context_rate,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["vae"] = keras.saving.deserialize_keras_object(config["vae"])
        return cls(**config)
