"""Old-format files: a plain `VAE` whose sizes live only in its functional graph.

Before the architecture classes (`MLPVAE`, `ConvVAE`, `FramewiseVAE`,
`ConvLSTMVAE`, `ConvLSTMPredictor`), the builders returned a `VAE` holding
two functional networks, so a saved model forgot its sizes (a predictor its
context length). Such files still load, as a `VAE`; `upgrade_model` reads the
sizes back from the graph, builds the architecture class with them (its
layers are created in the same order, so the weights line up one to one),
moves the weights across and checks that both give identical outputs.

    python -m vaelib upgrade-model OLD.keras --out NEW.keras
"""

import keras
import numpy as np

from vaelib.layers import FusedConvLSTM2D, GaussianHead, PerFrame
from vaelib.models.base import VAE
from vaelib.models.conv import ConvVAE
from vaelib.models.mlp import MLPVAE
from vaelib.models.video import ConvLSTMPredictor, ConvLSTMVAE, FramewiseVAE

# The names the old builders gave their models, and the class each becomes.
ARCHITECTURES = {
    "mlp_vae": MLPVAE,
    "conv_vae": ConvVAE,
    "framewise_vae": FramewiseVAE,
    "convlstm_vae": ConvLSTMVAE,
    "convlstm_predictor": ConvLSTMPredictor,
}


def is_legacy(model):
    """True for a plain `VAE` (an old-format file), not an architecture class."""
    return type(model) is VAE


def _inner(layer):
    return layer.layer if isinstance(layer, keras.layers.Wrapper) else layer


def _layers(network, kind):
    return [
        _inner(layer)
        for layer in network.layers
        if type(_inner(layer)) is kind  # exact: Conv2DTranspose is not a Conv2D
    ]


def legacy_config(model):
    """The architecture class and config of an old-format `VAE`, read from its graph.

    Args:
        model: A plain `VAE` built by one of vaelib's builders before they
            returned architecture classes (its `name` says which builder).

    Returns:
        A pair `(cls, config)` with `cls(**config)` the same architecture.
    """
    if model.name not in ARCHITECTURES:
        raise ValueError(
            f"Expected a VAE built by one of vaelib's builders (named one of "
            f"{sorted(ARCHITECTURES)}). Received: name={model.name!r}"
        )
    cls = ARCHITECTURES[model.name]
    encoder, decoder = model.encoder, model.decoder
    (head,) = [layer for layer in encoder.layers if isinstance(layer, GaussianHead)]
    config = {
        "name": model.name,
        "input_shape": list(model.data_shape),
        "latent_dim": head.latent_dim,
        "beta": float(keras.ops.convert_to_numpy(model.beta)),
        "seed": model.seed,
    }
    if cls in (MLPVAE, ConvVAE):
        config["likelihood"] = model.likelihood
        config["decoder_log_var"] = model.decoder_log_var
    dense = [layer.units for layer in _layers(encoder, keras.layers.Dense)]
    filters = [layer.filters for layer in _layers(encoder, keras.layers.Conv2D)]
    if cls is MLPVAE:
        config["hidden"] = dense
        return cls, config
    config["filters"] = filters
    if cls is ConvVAE:
        (config["dense_units"],) = dense
        return cls, config

    config["fast"] = any(isinstance(layer, PerFrame) for layer in encoder.layers)
    decoder_convs = len(
        [
            layer
            for layer in decoder.layers
            if type(_inner(layer)) is keras.layers.Conv2D
            and layer.name != "pixel_logits"
        ]
    )
    if cls is FramewiseVAE:
        decoder_convs -= 1  # the convolution in place of the ConvLSTM
    config["decoder_convs"] = 1 + decoder_convs // len(filters)
    if cls is FramewiseVAE:
        return cls, config
    (lstm,) = [
        layer
        for layer in encoder.layers
        if isinstance(layer, FusedConvLSTM2D | keras.layers.ConvLSTM2D)
    ]
    config["lstm_filters"] = lstm.filters
    config["skip"] = any(
        layer.name == "encoder_convlstm_skip" for layer in encoder.layers
    )
    if cls is ConvLSTMPredictor:
        crop = encoder.get_layer("context").cropping
        config["context_frames"] = model.data_shape[0] - crop[0][1]
    return cls, config


def upgrade_model(model, seed=0):
    """Converts an old-format `VAE` to its architecture class, outputs unchanged.

    Builds `cls(**config)` from `legacy_config(model)`, copies the weights in
    order, and checks on a random batch that the posterior (mean and
    log-variance) and the decoder's output are bit-for-bit identical.

    Args:
        model: A plain `VAE` from an old-format `.keras` file.
        seed: Seed of the random check batch.

    Returns:
        The converted model (an `MLPVAE`, `ConvVAE`, `FramewiseVAE`,
        `ConvLSTMVAE` or `ConvLSTMPredictor`), ready to `save`.

    Example:

    >>> built = MLPVAE(input_shape=(4, 4, 1), hidden=(8,))
    >>> old = VAE(built.encoder, built.decoder, name="mlp_vae")
    >>> type(upgrade_model(old)).__name__
    'MLPVAE'
    """
    if not is_legacy(model):
        raise ValueError(
            "Expected an old-format model (a plain VAE). Received: "
            f"{type(model).__name__}, which already knows its sizes"
        )
    cls, config = legacy_config(model)
    new = cls(**config)
    old_weights = model.get_weights()
    new_shapes = [tuple(w.shape) for w in new.weights]
    if new_shapes != [tuple(w.shape) for w in old_weights]:
        raise ValueError(
            f"The {cls.__name__} rebuilt from {model.name!r} has other weights "
            f"than the file. Expected shapes {new_shapes}. Received: "
            f"{[tuple(w.shape) for w in old_weights]}"
        )
    new.set_weights(old_weights)
    x = np.random.default_rng(seed).random((2,) + model.data_shape, "float32")
    old_posterior = model.encoder(x, training=False)
    new_posterior = new.encoder(x, training=False)
    old_decoded = model.decoder(old_posterior[0], training=False)
    new_decoded = new.decoder(new_posterior[0], training=False)
    pairs = list(zip(old_posterior, new_posterior, strict=True))
    pairs.append((old_decoded, new_decoded))
    for old_value, new_value in pairs:
        if not np.array_equal(
            keras.ops.convert_to_numpy(old_value), keras.ops.convert_to_numpy(new_value)
        ):
            raise ValueError(
                f"The {cls.__name__} rebuilt from {model.name!r} does not give "
                "identical outputs; the file was not converted"
            )
    return new
