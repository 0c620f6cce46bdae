"""`VAE`: an encoder, a decoder, and the ELBO as the training loss."""

import contextlib
import functools
import inspect

import keras
import numpy as np
from keras import ops

from vaelib import _arguments, losses
from vaelib.layers import Sampling

LIKELIHOODS = ("bernoulli", "gaussian")


def run_in_batches(network, x, batch_size):
    """`network(x, training=False)` batch by batch, as numpy arrays.

    On JAX a Keras call runs eagerly, op by op from Python, and a ConvLSTM's
    time loop is slow that way (`evaluate_video` took 41.6 s on 200 clips
    against 4.2 s on TensorFlow); `predict_on_batch` runs it as one compiled
    XLA program. Every batch is padded to `batch_size` so that it compiles
    once. TensorFlow's eager ops are already fast: there the network is
    called directly. Outputs keep the network's structure (a tensor, or a
    tuple of them), each concatenated over the batches.
    """
    batch_size = _arguments.positive_int("batch_size", batch_size)
    compiled = keras.backend.backend() == "jax"
    outputs = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        count = len(batch)
        if compiled:
            if count < batch_size and len(x) > batch_size:
                padding = np.zeros((batch_size - count,) + batch.shape[1:], batch.dtype)
                batch = np.concatenate([batch, padding])
            result = network.predict_on_batch(batch)
        else:
            result = network(batch, training=False)
        result = result if isinstance(result, list | tuple) else (result,)
        outputs.append([np.asarray(ops.convert_to_numpy(t))[:count] for t in result])
    joined = tuple(np.concatenate(parts) for parts in zip(*outputs, strict=True))
    return joined if len(joined) > 1 else joined[0]


@keras.saving.register_keras_serializable(package="vaelib")
class VAE(keras.Model):
    """A variational autoencoder trained by maximising the ELBO with `fit`.

    The encoder maps `x` to the mean and log-variance of a diagonal Gaussian
    posterior q(z | x); `Sampling` draws `z` from it with the
    reparameterisation trick; the decoder maps `z` to the parameters of
    p(x | z). The training loss is the negative evidence lower bound

        loss = mean over the batch of [ -log p(x | z) + beta * KL(q(z|x) || p(z)) ]

    with both terms summed over every pixel and latent unit of an example
    (see `vaelib.losses`), so `beta = 1` is the true ELBO and
    `log p(x) >= ELBO`. The loss is computed in `compute_loss`, the hook
    Keras' `fit` calls on every backend, and always in float32, also under a
    mixed-precision policy. `fit` reports `loss`, `reconstruction` and `kl`.

    Args:
        encoder: A model `x -> (z_mean, z_log_var)`.
        decoder: A model `z -> logits` (Bernoulli likelihood) or
            `z -> means` (Gaussian likelihood).
        likelihood: `"bernoulli"` for data in `[0, 1]`, or `"gaussian"` with
            the fixed observation log-variance `decoder_log_var`.
        decoder_log_var: Log-variance of p(x | z) for the Gaussian likelihood.
        beta: Initial weight of the KL term. Stored in a non-trainable
            variable, `model.beta`, which a callback may `assign` during `fit`
            (KL annealing).
        free_bits: Nats per latent channel that training does not charge
            (Kingma et al., 2016): the KL term of the loss becomes
            `sum_c max(free_bits, E_batch[KL_c])`, with `KL_c` the KL of
            channel `c` summed over its positions (and frames), so squeezing
            a channel below `free_bits` saves nothing and it stays in use.
            0 (the default) is the plain ELBO. The reported `kl` is always
            the true KL, and `elbo` ignores it.
        seed: Optional integer seed of the sampling noise.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: A batch `x` with the encoder's input shape.
        training: Passed to the encoder and decoder (dropout or batch
            normalisation layers, if any, follow it); the posterior sample
            is drawn in every mode, so that `evaluate` reports the same ELBO
            that training optimises.

    Returns:
        From `model(x)`: a tuple `(decoder_output, z_mean, z_log_var)`.

    Example:

    >>> from vaelib.models import mlp_vae
    >>> model = mlp_vae(input_shape=(28, 28, 1), latent_dim=2)
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((8, 28, 28, 1), dtype="float32")
    >>> tuple(model.elbo(x).shape)
    (8,)

    Introduced in: course/02_mlp_vae.ipynb
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood="bernoulli",
        decoder_log_var=0.0,
        beta=1.0,
        seed=None,
        free_bits=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"Expected likelihood to be one of {LIKELIHOODS}. "
                f"Received: likelihood={likelihood!r}"
            )
        beta = _arguments.finite_float("beta", beta, minimum=0)
        for name, network in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(network, keras.Model):
                raise ValueError(
                    f"Expected {name} to be a keras.Model (x -> (z_mean, z_log_var) "
                    "for the encoder, z -> pixel parameters for the decoder). "
                    f"Received: {name} of type {type(network).__name__}"
                )
        decoder_log_var = _arguments.finite_float("decoder_log_var", decoder_log_var)
        self.free_bits = _arguments.finite_float("free_bits", free_bits, minimum=0)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.decoder_log_var = decoder_log_var
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(beta)),
            trainable=False,
            dtype="float32",
            name="beta",
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.input_spec = keras.layers.InputSpec(
            shape=(None,) + tuple(encoder.input_shape[1:])
        )
        # Every weight exists once the encoder and decoder do, so the model is
        # usable (count_params, summary, get_weights) before its first call.
        self.built = encoder.built and decoder.built

    @property
    def data_shape(self):
        """Shape of one example, `encoder.input_shape` without the batch axis."""
        return tuple(self.encoder.input_shape[1:])

    @property
    def latent_shape(self):
        """Shape of one latent, `decoder.input_shape` without the batch axis."""
        return tuple(self.decoder.input_shape[1:])

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling((z_mean, z_log_var))
        return self.decoder(z, training=training), z_mean, z_log_var

    def reconstruction_loss(self, x, decoder_output):
        """`-log p(x | z)` per example, in nats, for this model's likelihood."""
        decoder_output = ops.cast(decoder_output, "float32")
        if self.likelihood == "bernoulli":
            return losses.bernoulli_nll(x, decoder_output)
        return losses.gaussian_nll(x, decoder_output, self.decoder_log_var)

    def kl_loss(self, z_mean, z_log_var):
        """`KL(q(z | x) || N(0, I))` per example, in nats, always in float32.

        The one KL path of the library: `compute_loss`, `elbo` and
        `vaelib.metrics` all take it, so a mixed-precision model (whose
        float16 `exp` overflows above 11) reports a finite KL everywhere.
        """
        return losses.gaussian_kl(
            ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
        )

    def kl_per_channel(self, z_mean, z_log_var, *prior):
        """`(batch, channels)`: each example's KL in each latent channel, nats.

        A channel is the last axis of the latent (a dimension of a vector
        latent, a channel of a latent map); its KL is summed over positions
        and frames. The channels' KLs add up to `kl_loss`. `kl_loss` sums over
        every non-batch axis; moving the channel axis into the batch makes it
        sum over one channel's positions only, so a model's own `kl_loss`
        (a learned prior's included, with its `prior` parameters) is used.
        """
        channels = z_mean.shape[-1]
        positions = int(np.prod(z_mean.shape[1:-1], dtype="int64"))
        by_channel = [
            ops.reshape(ops.moveaxis(ops.cast(t, "float32"), -1, 0), (-1, positions))
            for t in (z_mean, z_log_var, *prior)
        ]
        kl = self.kl_loss(*by_channel)
        return ops.transpose(ops.reshape(kl, (channels, -1)))

    def prior_log_prob(self, z, decoder_output=None):
        """`log p(z)` per example, in nats, float32: here the prior N(0, I).

        `decoder_output` is what the decoder made of `z`; a model whose prior
        reads it (`LearnedPriorVAE`) overrides this method, and
        `vaelib.metrics.iwae_log_likelihood` calls it, so the bound uses each
        model's own prior.
        """
        return losses.standard_normal_log_prob(ops.cast(z, "float32"))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # (z_mean, z_log_var), and a learned prior's mean and log-variance
        # for models that have one (`LearnedPriorVAE`): `kl_loss` takes them all
        decoder_output, *gaussians = y_pred
        reconstruction = self.reconstruction_loss(x, decoder_output)
        kl = self.kl_loss(*gaussians)
        if sample_weight is None:
            batch_mean = ops.mean
        else:
            sample_weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            weights = sample_weight / ops.maximum(ops.sum(sample_weight), 1e-12)

            def batch_mean(values, axis=0):
                shape = (-1,) + (1,) * (len(values.shape) - 1)
                return ops.sum(values * ops.reshape(weights, shape), axis=0)

        if self.free_bits > 0:
            # sum_c max(lambda, E_batch[KL_c]): no gradient below the floor
            per_channel = batch_mean(self.kl_per_channel(*gaussians), axis=0)
            charged = ops.sum(ops.maximum(per_channel, self.free_bits))
        else:
            charged = batch_mean(kl, axis=0)
        loss = batch_mean(reconstruction, axis=0) + self.beta * charged
        self.reconstruction_tracker.update_state(
            reconstruction, sample_weight=sample_weight
        )
        self.kl_tracker.update_state(kl, sample_weight=sample_weight)
        for extra_loss in self.losses:
            loss = loss + ops.cast(ops.sum(extra_loss), "float32")
        return _scale_for_replicas(loss)

    def compute_output_shape(self, input_shape):
        latent = (input_shape[0],) + self.latent_shape
        return (input_shape[0],) + self.data_shape, latent, latent

    # Public, eager helpers. They take numpy arrays or tensors and check them.

    def _check_input(self, x):
        x = np.asarray(ops.convert_to_numpy(x))
        expected = self.data_shape
        if x.ndim != len(expected) + 1 or any(
            e is not None and r != e for r, e in zip(x.shape[1:], expected, strict=True)
        ):
            raise ValueError(
                f"Expected input of shape (batch_size, {', '.join(map(str, expected))})"
                f". Received: shape={x.shape}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                "Expected floating-point input scaled to [0, 1] (divide uint8 "
                f"images by 255). Received: dtype={x.dtype}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("Expected finite input. Received NaN or inf values.")
        if self.likelihood == "bernoulli" and x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                "The Bernoulli likelihood expects values in [0, 1]. "
                f"Received: min={x.min():.4g}, max={x.max():.4g}"
            )
        return x.astype("float32", copy=False)

    def _check_fit_data(self, x):
        """Checks arrays whole, and the first batch of a dataset.

        A `tf.data.Dataset` or a `keras.utils.PyDataset` is checked on its
        first batch (its first element, or the `x` of an `(x, y)` pair), so
        0-255 pixels are refused before training, not found after it.
        """
        if hasattr(x, "__array__"):
            self._check_input(x)
            return
        first = _first_batch(x)
        if first is not None:
            try:
                self._check_input(first)
            except ValueError as error:
                raise ValueError(
                    f"In the first batch of the dataset: {error}"
                ) from None

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_fit_data(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_fit_data(x)
        return super().evaluate(x, y, *args, **kwargs)

    def encode(self, x):
        """Returns `(z_mean, z_log_var)` of q(z | x) for a batch `x`."""
        return self.encoder(self._check_input(x), training=False)

    def decode(self, z):
        """Returns the mean of p(x | z): probabilities (Bernoulli) or means."""
        return self.mean_of(self.decoder(z, training=False))

    def mean_of(self, decoder_output):
        """The mean of p(x | z) from the decoder's output, in float32.

        Bernoulli pixels: `sigmoid(logits)`, the probabilities; Gaussian
        pixels: the output itself.
        """
        output = ops.cast(decoder_output, "float32")
        if self.likelihood == "bernoulli":
            return ops.sigmoid(output)
        return output

    def sample(self, n, seed=None):
        """Decodes `n` draws from the prior N(0, I) (mean images, not noisy)."""
        n = _arguments.positive_int("n", n)
        z = keras.random.normal((n,) + self.latent_shape, seed=seed)
        return self.decode(z)

    def reconstruct(self, x):
        """Decodes the posterior mean of `x`: a deterministic reconstruction."""
        z_mean, _ = self.encode(x)
        return self.decode(z_mean)

    def elbo(self, x):
        """Per-example ELBO in nats (one posterior sample, `beta` ignored)."""
        x = self._check_input(x)
        decoder_output, *gaussians = self(x, training=False)
        kl = self.kl_loss(*gaussians)
        return -(self.reconstruction_loss(x, decoder_output) + kl)

    def get_config(self):
        config = self._vae_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
            }
        )
        return config

    def _vae_config(self):
        """The config of `keras.Model` and of this class, without the networks.

        Architecture subclasses (`MLPVAE`, `ConvLSTMVAE`, ...) build their
        encoder and decoder from their sizes, so their config holds the sizes
        instead of the two networks.
        """
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood,
                "decoder_log_var": self.decoder_log_var,
                "beta": float(ops.convert_to_numpy(self.beta)),
                "seed": self.seed,
            }
        )
        if self.free_bits:
            # only when used: a file without it loads in vaelib before free_bits
            config["free_bits"] = self.free_bits
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def _first_batch(data):
    """The inputs of a dataset's first batch, or None for what cannot be peeked.

    Reads one batch of a `tf.data.Dataset` (a fresh iterator: `fit` starts
    its own) or item 0 of a `keras.utils.PyDataset`; generators are not
    touched, since reading one would consume it.
    """
    batch = None
    if isinstance(data, keras.utils.PyDataset):
        if len(data):
            batch = data[0]
    elif type(data).__module__.startswith("tensorflow") and hasattr(data, "take"):
        batch = next(iter(data.take(1)), None)
    if isinstance(batch, tuple | list):
        batch = batch[0] if batch else None
    if isinstance(batch, dict) or batch is None:
        return None
    return ops.convert_to_numpy(batch)


@contextlib.contextmanager
def dtype_policy_scope(dtype):
    """Layers created inside take the dtype policy `dtype`; None keeps the global one.

    `dtype` is what Keras accepts as a layer's `dtype`: a policy name such as
    `"mixed_float16"`, a `keras.DTypePolicy`, or its serialised form from a
    saved config. The global policy is restored on exit.
    """
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def builds_in_its_policy(init):
    """Decorates an architecture's `__init__`: its networks take its `dtype`.

    An architecture class builds its encoder and decoder from its sizes; a
    layer created without a `dtype` takes the global policy, so without this
    `MLPVAE(dtype="mixed_float16")` would compute in float32, and a model
    saved under a mixed policy would reload in the global one. With it, the
    model and every layer of its networks share one policy: the `dtype`
    argument (saved in the model's config) or, without one, the global policy.
    """

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = keras.config.dtype_policy()
        with dtype_policy_scope(kwargs["dtype"]):
            init(self, *args, **kwargs)

    # Keras reads the signature (and its argument spec) for its auto-config.
    __init__.__signature__ = inspect.signature(init)
    return __init__


def _scale_for_replicas(loss):
    """Divides the loss by the number of `tf.distribute` replicas, as Keras does.

    Each replica's gradients are summed across replicas, so each must be of
    `loss / num_replicas` for the update to be that of the global-batch mean
    (Keras' own `compute_loss` does the same; `fit` multiplies back for the
    reported loss). No-op on other backends and without a strategy.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / replicas
