import pytest

from vaelib.models import conv_vae


def test_conv_vae_shapes():
    model = conv_vae(input_shape=(32, 32, 3), latent_dim=6, filters=(8, 16, 32))
    assert model.encoder.output_shape == [(None, 6), (None, 6)]
    assert model.decoder.output_shape == (None, 32, 32, 3)


def test_conv_vae_rejects_sizes_the_strides_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 8"):
        conv_vae(input_shape=(28, 28, 1), filters=(8, 16, 32))
    with pytest.raises(ValueError, match=r"input_shape=\(height, width, channels\)"):
        conv_vae(input_shape=(28, 28))
