from vaelib.models import mlp_vae


def test_mlp_vae_layers_and_parameter_count():
    model = mlp_vae(input_shape=(28, 28, 1), latent_dim=2, hidden=(512,))
    assert model.encoder.output_shape == [(None, 2), (None, 2)]
    assert model.decoder.output_shape == (None, 28, 28, 1)
    # encoder 784*512+512 + 2 * (512*2+2); decoder 2*512+512 + 512*784+784
    assert model.encoder.count_params() == 784 * 512 + 512 + 2 * (512 * 2 + 2)
    assert model.decoder.count_params() == 2 * 512 + 512 + 512 * 784 + 784


def test_mlp_vae_takes_any_image_shape_and_depth():
    model = mlp_vae(input_shape=(8, 6, 3), latent_dim=5, hidden=(32, 16))
    assert model.decoder.output_shape == (None, 8, 6, 3)
    assert len(model.encoder.layers) == 5  # input, flatten, two dense, head
