"""A video VAE with a learned temporal prior, for generation and stochastic prediction.

`ConvLSTMVAE` gives every frame's latent the prior N(0, I), so a sample from
the prior lands where its decoder has never been (black clips). Here the
prior is learned and conditional on the past, as in SVG-LP (Denton and
Fergus, 2018) and the VRNN (Chung et al., 2015). Generating a clip is then
ancestral sampling: draw z_0 from p(z_0), decode frame 0, embed it, draw z_1
from the prior given that frame, and so on, each generated frame fed back.

The prior reads the frames the decoder drew, in training as in generation,
so it is p(z_t | z_<t). (SVG-LP's prior reads the real frames in training,
p(z_t | x_<t), and then sees the decoder's blurred frames when generating:
measured in course/09_learned_temporal_prior.ipynb.)

After training, `fit_first_frame_prior` can replace p(z_0) for sampling by a
Gaussian mixture fitted to the posterior's draws of z_0 ("ex-post density
estimation", Ghosh et al., 2020): one Gaussian fits badly what two digits
look like and where they are, and its samples start dim.
"""

import keras
import numpy as np
from keras import ops

from vaelib import _arguments, losses
from vaelib.layers import FusedConvLSTM2D, GaussianHead, PerFrame
from vaelib.models.base import VAE, builds_in_its_policy

# The posterior starts narrow (variance e**-2): a wide starting posterior
# makes z noise that the decoder learns to ignore (posterior collapse).
POSTERIOR_START_LOG_VAR = -2.0


@keras.saving.register_keras_serializable(package="vaelib")
class LearnedPriorVAE(VAE):
    """A sequential video VAE whose prior over each frame's latent is learned.

    Every frame `x_t` is embedded by the same strided convolutions into a
    feature map `e_t`. Three ConvLSTMs read these maps in order:

    - the posterior q(z_t | x_<=t): a ConvLSTM over `e_0 .. e_t`, then a
      dense `GaussianHead` on the flattened map (and `e_t` itself, a short
      path past the LSTM's gates): a latent vector per frame;
    - the learned prior p(z_t | z_<t): a ConvLSTM over the embeddings of
      the frames the decoder drew from z_0 .. z_{t-1} (zero input at t = 0,
      so p(z_0) is a learned Gaussian), with the same kind of head. It never
      sees a real frame: in training it reads the decoder's means for the
      posterior's draws, when generating for the prior's own draws, so it
      is trained on what it will see. (A prior trained on the real frames,
      SVG-LP's p(z_t | x_<t), was 4.3 nats per frame from the posterior
      after frame 0 when it read real frames, and 28.9 when it read the
      decoder's, as it does when generating; its samples moved too slowly
      and their consecutive frames correlated 0.74 against the data's 0.55.
      `benchmarks/prior_exposure.py` measures it);
    - the decoder p(x_t | z_<=t): z_t projected to a map, through a
      ConvLSTM (its memory of z_<t) and transposed convolutions to pixel
      logits. It never reads a frame: what a frame shows has to be in the
      latents. (A decoder that also reads x_{t-1}, as SVG-LP's does, learned
      to copy the previous frame and spent only ~15 nats on frame 0; its
      samples from nothing were blurred and faded as generated frames were
      fed back. Measured in benchmarks/README.md.)

    The loss of a clip is the sequential ELBO's negative,

        sum_t [ -log p(x_t | z_<=t) + beta * KL(q(z_t | x_<=t) || p(z_t | z_<t)) ]

    with both terms summed over pixels, latent units and frames
    (`vaelib.losses.bernoulli_nll`, `vaelib.losses.gaussian_kl` with the
    prior's mean and log-variance), averaged over clips, for one draw of z
    from the posterior (the KL of frame t depends on z_<t through the
    prior). One pass over the clip computes all terms (`fit`,
    `compute_loss`, any backend): encode, draw z, decode, and let the prior
    read the decoded frames (no gradient flows into them from the KL).
    `sample` and `predict_future` run the networks one frame at a time and
    feed each generated frame (its Bernoulli means, not a thresholded
    image) back to the prior.

    Args:
        input_shape: `(num_frames, height, width, 1)`; height and width
            divisible by `2 ** len(filters)`.
        latent_dim: Units of each frame's latent vector z_t.
        filters: Filters of the strided frame convolutions, encoder order.
        lstm_filters: Hidden channels of the three ConvLSTMs.
        decoder_convs: Convolutions per resolution in the decoder, as in
            `ConvLSTMVAE`.
        seed: Seed of the posterior sampling noise in training.
        beta: Weight of the KL term, see `VAE` (`KLAnnealing` ramps it).
        first_frame_components: Components of the Gaussian mixture that
            `sample` draws z_0 from once `fit_first_frame_prior` has fitted
            it (saved with the model); 0 for none: z_0 ~ p(z_0). The loss,
            the ELBO and the KL always use the learned Gaussian p(z_0).
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: Clips `(batch, num_frames, height, width, 1)` in [0, 1].

    Returns:
        From `model(x)`: `(logits, z_mean, z_log_var, prior_mean,
        prior_log_var)`, logits of the clip's shape and four `(batch,
        num_frames, latent_dim)` tensors.

    Example:

    >>> model = LearnedPriorVAE(input_shape=(6, 16, 16, 1), latent_dim=4,
    ...                         filters=(8,), lstm_filters=8)
    >>> model.sample(2, seed=0).shape
    (2, 6, 16, 16, 1)

    Introduced in: course/09_learned_temporal_prior.ipynb
    """

    @builds_in_its_policy
    def __init__(
        self,
        input_shape=(20, 32, 32, 1),
        latent_dim=32,
        filters=(32, 64),
        lstm_filters=64,
        decoder_convs=2,
        seed=None,
        beta=1.0,
        first_frame_components=0,
        **kwargs,
    ):
        filters = _arguments.positive_ints("filters", filters)
        first_frame_components = _arguments.integer(
            "first_frame_components", first_frame_components, minimum=0
        )
        input_shape = _arguments.positive_ints("input_shape", input_shape)
        factor = 2 ** len(filters)
        if len(input_shape) != 4 or input_shape[-1] != 1:
            raise ValueError(
                "Expected input_shape=(num_frames, height, width, 1). "
                f"Received: input_shape={input_shape}"
            )
        if input_shape[1] % factor or input_shape[2] % factor:
            raise ValueError(
                f"Expected height and width divisible by {factor} "
                f"(2 ** len(filters)). Received: input_shape={input_shape}, "
                f"filters={filters}"
            )
        latent_dim = _arguments.positive_int("latent_dim", latent_dim)
        lstm_filters = _arguments.positive_int("lstm_filters", lstm_filters)
        decoder_convs = _arguments.positive_int("decoder_convs", decoder_convs)
        num_frames, height, width, _ = input_shape
        map_shape = (height // factor, width // factor)

        self.embedding = [
            PerFrame(
                keras.layers.Conv2D(
                    f,
                    3,
                    strides=2,
                    padding="same",
                    activation="relu",
                    kernel_initializer="he_uniform",
                ),
                name=f"embed_{i}",
            )
            for i, f in enumerate(filters)
        ]
        self.posterior_lstm = FusedConvLSTM2D(lstm_filters, 3, name="posterior_lstm")
        self.prior_lstm = FusedConvLSTM2D(lstm_filters, 3, name="prior_lstm")
        self.decoder_lstm = FusedConvLSTM2D(lstm_filters, 3, name="decoder_lstm")
        self.flatten = PerFrame(keras.layers.Flatten(), name="flatten")
        self.posterior_head = GaussianHead(latent_dim, name="posterior")
        self.prior_head = GaussianHead(latent_dim, name="prior")
        self.projection = keras.layers.Dense(
            map_shape[0] * map_shape[1] * filters[-1],
            activation="relu",
            kernel_initializer="he_uniform",
            name="latent_projection",
        )
        self.upsampling = []
        for f in reversed(filters):
            self.upsampling.append(
                PerFrame(
                    keras.layers.Conv2DTranspose(
                        f,
                        3,
                        strides=2,
                        padding="same",
                        activation="relu",
                        kernel_initializer="he_uniform",
                    )
                )
            )
            for _ in range(decoder_convs - 1):
                self.upsampling.append(
                    PerFrame(
                        keras.layers.Conv2D(
                            f,
                            3,
                            padding="same",
                            activation="relu",
                            kernel_initializer="he_uniform",
                        )
                    )
                )
        self.upsampling.append(
            PerFrame(keras.layers.Conv2D(1, 3, padding="same"), name="pixel_logits")
        )
        self._map_shape = map_shape + (filters[-1],)

        clip = keras.Input(shape=input_shape, name="clip")
        # (batch, num_frames, h, w, filters[-1]): every frame embedded alone
        embedded = self._embed(clip)
        z_mean, z_log_var = self._posterior(embedded, self.posterior_lstm(embedded))
        encoder = keras.Model(clip, [z_mean, z_log_var], name="encoder")

        # The prior reads frames the decoder drew (see `call`), embedded by
        # the same convolutions; at every step the previous one's embedding:
        # zeros, e_0, ..., e_{T-2}.
        drawn = keras.Input(shape=input_shape, name="drawn_frames")
        previous = keras.layers.Cropping3D(((0, 1), (0, 0), (0, 0)))(
            keras.layers.ZeroPadding3D(((1, 0), (0, 0), (0, 0)))(self._embed(drawn))
        )
        prior_mean, prior_log_var = self._prior(previous, self.prior_lstm(previous))
        prior = keras.Model(drawn, [prior_mean, prior_log_var], name="prior")

        latent = keras.Input(shape=(num_frames, latent_dim), name="z")
        decoder_input = self._decoder_input(latent)
        logits = self._decode_frames(decoder_input, self.decoder_lstm(decoder_input))
        decoder = keras.Model(latent, logits, name="decoder")

        kwargs.setdefault("name", "learned_prior_vae")
        super().__init__(encoder, decoder, beta=beta, seed=seed, **kwargs)
        self.prior = prior
        self.latent_dim = latent_dim
        self.filters = filters
        self.lstm_filters = lstm_filters
        self.decoder_convs = decoder_convs
        self.posterior_head.log_var_layer.bias.assign(
            np.full(latent_dim, POSTERIOR_START_LOG_VAR, "float32")
        )
        # The mixture for z_0 (`fit_first_frame_prior`): log-weights, means
        # and the Cholesky factors of the covariances, not trained by `fit`.
        # Only a model built with components has these variables, so the
        # weights of one built without stay those of earlier versions.
        self.first_frame_components = k = first_frame_components
        if k:
            shapes = {
                "fitted": (),
                "log_weights": (k,),
                "means": (k, latent_dim),
                "scale_tril": (k, latent_dim, latent_dim),
            }
            for name, shape in shapes.items():
                variable = self.add_weight(
                    shape=shape,
                    initializer="zeros",
                    trainable=False,
                    name=f"first_frame_{name}",
                )
                setattr(self, f"first_frame_{name}", variable)

    # The per-frame pieces, shared by the teacher-forced pass over a clip and
    # the one-frame-at-a-time generation.

    def _embed(self, frames):
        for layer in self.embedding:
            frames = layer(frames)
        return frames

    def _posterior(self, embedded, memory):
        features = self.flatten(ops.concatenate([embedded, memory], axis=-1))
        return self.posterior_head(features)

    def _prior(self, previous, memory):
        features = self.flatten(ops.concatenate([previous, memory], axis=-1))
        return self.prior_head(features)

    def _decoder_input(self, z):
        # (batch, frames, h, w, filters[-1]): z_t as a map
        return ops.reshape(self.projection(z), (-1, z.shape[1]) + self._map_shape)

    def _decode_frames(self, decoder_input, memory):
        features = ops.concatenate([decoder_input, memory], axis=-1)
        for layer in self.upsampling:
            features = layer(features)
        return features

    @property
    def latent_shape(self):
        """`(num_frames, latent_dim)`: one latent vector per frame."""
        return (self.data_shape[0], self.latent_dim)

    def call(self, inputs, training=None):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling((z_mean, z_log_var))
        logits = self.decoder(z, training=training)
        # The prior reads the frames decoded from z, not the real ones: when
        # generating, the frames fed back are the decoder's too, so the prior
        # is trained on what it will see. It is p(z_t | z_<t).
        drawn = ops.stop_gradient(ops.sigmoid(ops.cast(logits, "float32")))
        prior_mean, prior_log_var = self.prior(drawn, training=training)
        return logits, z_mean, z_log_var, prior_mean, prior_log_var

    def compute_output_shape(self, input_shape):
        latent = (input_shape[0],) + self.latent_shape
        return (tuple(input_shape),) + (latent,) * 4

    def kl_loss(self, z_mean, z_log_var, prior_mean=None, prior_log_var=None):
        """KL(q(z_t | x_<=t) || p(z_t | z_<t)) summed over frames, per clip (nats).

        Always in float32. Without the prior's parameters, the KL to N(0, I),
        as `VAE.kl_loss`.
        """
        prior = [
            None if t is None else ops.cast(t, "float32")
            for t in (prior_mean, prior_log_var)
        ]
        return losses.gaussian_kl(
            ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32"), *prior
        )

    def prior_log_prob(self, z, decoder_output=None):
        """`log p(z) = sum_t log p(z_t | z_<t)` per clip, in nats, float32.

        The prior reads the frames decoded from `z` (`decoder_output`, the
        decoder's logits for `z`; decoded here when not given), as in `call`.
        Each frame's decoded pixels depend only on `z` up to that frame, so
        this is the density of an autoregressive model of `z`.
        """
        if decoder_output is None:
            decoder_output = self.decoder(z, training=False)
        drawn = ops.sigmoid(ops.cast(decoder_output, "float32"))
        prior_mean, prior_log_var = self.prior(drawn, training=False)
        return losses.diagonal_normal_log_prob(
            ops.cast(z, "float32"),
            ops.cast(prior_mean, "float32"),
            ops.cast(prior_log_var, "float32"),
        )

    def kl_per_frame(self, x, prior_reads=None):
        """Numpy `(batch, num_frames)`: KL(q || p) of each frame, in nats.

        Args:
            x: Clips; q(z_t | x_<=t) reads them.
            prior_reads: Frames of the same shape for the prior to read
                (`benchmarks/prior_exposure.py` gives it the real clips). By
                default, as in the loss, the frames decoded from one
                posterior draw: another draw, slightly other KLs, each call.
        """
        x = self._check_input(x)
        if prior_reads is None:
            _, *gaussians = self(x, training=False)
        else:
            gaussians = [
                *self.encoder(x, training=False),
                *self.prior(self._check_input(prior_reads), training=False),
            ]
        # (batch * num_frames, latent_dim): one "example" per frame
        flat = [
            ops.reshape(ops.cast(t, "float32"), (-1, self.latent_dim))
            for t in gaussians
        ]
        return ops.convert_to_numpy(losses.gaussian_kl(*flat)).reshape(len(x), -1)

    # Generation: one frame at a time.

    def _zero_state(self, batch):
        shape = (batch,) + self._map_shape[:2] + (self.lstm_filters,)
        return ops.zeros(shape), ops.zeros(shape)

    def _rollout(
        self, context, num_future, seed=None, use_means=False, first_frame_mixture=False
    ):
        """Runs the networks frame by frame: real frames first, then generated ones.

        For the `context` frames, z_t is drawn from the posterior (which reads
        the real frames); after them, from the learned prior. At every step
        the decoder's Bernoulli means are what the prior reads next, as in
        training. With `use_means`, z_t is the posterior's or prior's mean
        instead of a draw. With `first_frame_mixture` and no context, z_0 is
        drawn from the fitted mixture instead of p(z_0).

        Returns:
            `(probabilities, prior_means, prior_log_vars)`: the decoder's
            means for every step `(batch, steps, height, width, 1)` and the
            prior's parameters `(batch, steps, latent_dim)`.
        """
        context = ops.convert_to_tensor(context, "float32")
        batch, context_frames = context.shape[0], context.shape[1]
        seed_generator = keras.random.SeedGenerator(seed)
        posterior_state = prior_state = decoder_state = self._zero_state(batch)
        previous = ops.zeros((batch, 1) + self._map_shape)
        frames, prior_means, prior_log_vars = [], [], []
        for t in range(context_frames + num_future):
            memory, prior_state = self.prior_lstm.step(previous, prior_state)
            prior_mean, prior_log_var = self._prior(previous, memory)
            if t < context_frames:
                embedded = self._embed(context[:, t : t + 1])
                memory, posterior_state = self.posterior_lstm.step(
                    embedded, posterior_state
                )
                mean, log_var = self._posterior(embedded, memory)
            else:
                mean, log_var = prior_mean, prior_log_var
            # z in float32 under a mixed policy too; the layers cast it back
            mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
            z = mean
            if not use_means:
                noise = keras.random.normal(ops.shape(mean), seed=seed_generator)
                z = mean + ops.exp(0.5 * log_var) * noise
            if t == 0 and context_frames == 0 and first_frame_mixture:
                z = ops.reshape(
                    self._draw_first_latents(batch, seed_generator), (batch, 1, -1)
                )
            decoder_input = self._decoder_input(z)
            memory, decoder_state = self.decoder_lstm.step(decoder_input, decoder_state)
            logits = ops.cast(self._decode_frames(decoder_input, memory), "float32")
            probabilities = ops.sigmoid(logits)
            frames.append(probabilities)
            prior_means.append(ops.cast(prior_mean, "float32"))
            prior_log_vars.append(ops.cast(prior_log_var, "float32"))
            previous = self._embed(probabilities)
        return tuple(
            ops.convert_to_numpy(ops.concatenate(values, axis=1))
            for values in (frames, prior_means, prior_log_vars)
        )

    def sample(self, n, seed=None, num_frames=None, first_frame=None):
        """Generates `n` clips from nothing by ancestral sampling.

        z_0 ~ p(z_0) (or the fitted mixture, see `first_frame`), frame 0 =
        the decoder's Bernoulli means; then for each t, z_t ~ p(z_t | z_<t),
        the prior reading the frames generated so far.

        Args:
            n: Number of clips.
            seed: Integer seed; the same seed gives the same clips.
            num_frames: Length of the clips (the training length by default).
            first_frame: Where z_0 comes from: `"mixture"` (the mixture of
                `fit_first_frame_prior`), `"prior"` (the learned Gaussian
                p(z_0)), or None: the mixture once fitted, else the prior.
                The mixture's draw takes more random numbers, so one seed
                gives other later frames with and without it.

        Returns:
            Numpy float32 `(n, num_frames, height, width, 1)` in [0, 1].
        """
        n = _arguments.positive_int("n", n)
        num_frames = _arguments.positive_int(
            "num_frames", self.data_shape[0] if num_frames is None else num_frames
        )
        fitted = self.has_first_frame_mixture
        if first_frame not in (None, "mixture", "prior"):
            raise ValueError(
                "Expected first_frame='mixture', 'prior' or None. "
                f"Received: first_frame={first_frame!r}"
            )
        if first_frame == "mixture" and not fitted:
            raise ValueError(
                "first_frame='mixture' needs a fitted mixture: call "
                "fit_first_frame_prior(clips) on a model built with "
                "first_frame_components > 0."
            )
        mixture = fitted if first_frame is None else first_frame == "mixture"
        empty = np.zeros((n, 0) + self.data_shape[1:], "float32")
        return self._rollout(empty, num_frames, seed, first_frame_mixture=mixture)[0]

    @property
    def has_first_frame_mixture(self):
        """Whether `fit_first_frame_prior` has fitted the mixture for z_0."""
        if not self.first_frame_components:
            return False
        return bool(ops.convert_to_numpy(self.first_frame_fitted) > 0)

    def fit_first_frame_prior(self, clips, seed=0, batch_size=64):
        """Fits the Gaussian mixture that `sample` draws z_0 from.

        A second stage after training ("ex-post density estimation", Ghosh
        et al., 2020): draw z_0 once from the posterior q(z_0 | x_0) of each
        clip and fit `first_frame_components` Gaussians with full
        covariances to the draws (scikit-learn's `GaussianMixture`). The
        learned p(z_0), one diagonal Gaussian, covers the posterior's draws
        only roughly; a sample from its empty regions decodes to a dim first
        frame, and later frames follow it. Choose the number of components
        on draws for other clips (`mixture.score`): too many memorise the
        draws (`benchmarks/first_frame_prior.py`: 10 for the shipped model,
        where 50 scored new draws below p(z_0)).

        Args:
            clips: Training clips `(n, num_frames, height, width, 1)` in
                [0, 1]; only their first frames matter. A few thousand.
            seed: Seed of the posterior draws and of the mixture's fit.
            batch_size: Clips per encoder pass.

        Returns:
            The fitted `sklearn.mixture.GaussianMixture`.
        """
        from sklearn.mixture import GaussianMixture

        k = self.first_frame_components
        if k == 0:
            raise ValueError(
                "This model has no mixture for z_0: build it with "
                "first_frame_components > 0 (e.g. 10)."
            )
        clips = self._check_input(clips)
        batch_size = _arguments.positive_int("batch_size", batch_size)
        if len(clips) < 2 * k:
            raise ValueError(
                f"Expected at least {2 * k} clips to fit {k} components. "
                f"Received: {len(clips)} clips"
            )
        means, log_vars = [], []
        for start in range(0, len(clips), batch_size):
            # q(z_0 | x_0): the posterior is causal, later frames do not move it
            mean, log_var = self.encoder(
                clips[start : start + batch_size], training=False
            )
            means.append(ops.convert_to_numpy(mean)[:, 0])
            log_vars.append(ops.convert_to_numpy(log_var)[:, 0])
        mean, log_var = np.concatenate(means), np.concatenate(log_vars)
        noise = np.random.default_rng(seed).normal(size=mean.shape)
        # float64: float32 draws give covariances that are not quite PSD
        draws = mean.astype("float64") + np.exp(0.5 * log_var) * noise
        mixture = GaussianMixture(k, covariance_type="full", random_state=seed)
        mixture.fit(draws)
        self.first_frame_log_weights.assign(np.log(mixture.weights_).astype("float32"))
        self.first_frame_means.assign(mixture.means_.astype("float32"))
        self.first_frame_scale_tril.assign(
            np.linalg.cholesky(mixture.covariances_).astype("float32")
        )
        self.first_frame_fitted.assign(1.0)
        return mixture

    def _draw_first_latents(self, n, seed_generator):
        """`(n, latent_dim)` draws of z_0 from the fitted mixture."""
        logits = ops.broadcast_to(
            self.first_frame_log_weights[None], (n, self.first_frame_components)
        )
        component = keras.random.categorical(logits, 1, seed=seed_generator)[:, 0]
        mean = ops.take(self.first_frame_means, component, axis=0)
        scale = ops.take(self.first_frame_scale_tril, component, axis=0)
        noise = keras.random.normal((n, self.latent_dim), seed=seed_generator)
        return mean + ops.einsum("nij,nj->ni", scale, noise)

    def first_frame_latents(self, n, seed=None):
        """Numpy `(n, latent_dim)`: draws of z_0 from the fitted mixture."""
        n = _arguments.positive_int("n", n)
        if not self.has_first_frame_mixture:
            raise ValueError("No fitted mixture: call fit_first_frame_prior first.")
        draws = self._draw_first_latents(n, keras.random.SeedGenerator(seed))
        return ops.convert_to_numpy(draws)

    def predict_future(self, context, num_future, seed=None):
        """Samples one future of `num_future` frames for each context clip.

        The context frames go through the posterior (as in training); the
        future frames are drawn from the learned prior, each decoded frame
        fed back to it. Each call
        with another seed gives another future: call it k times for k
        futures.

        Args:
            context: Clips `(batch, context_frames, height, width, 1)` in
                [0, 1], at least one frame.
            num_future: Frames to generate after the context.
            seed: Integer seed of the latent draws.

        Returns:
            Numpy float32 `(batch, num_future, height, width, 1)` in [0, 1].
        """
        context = np.asarray(ops.convert_to_numpy(context))
        expected = self.data_shape[1:]
        if context.ndim != 5 or context.shape[2:] != expected or context.shape[1] < 1:
            raise ValueError(
                "Expected context clips of shape (batch_size, context_frames >= 1, "
                f"{', '.join(map(str, expected))}). Received: shape={context.shape}"
            )
        context = _arguments.unit_interval("context", context)
        num_future = _arguments.positive_int("num_future", num_future)
        frames = self._rollout(context.astype("float32"), num_future, seed)[0]
        return frames[:, context.shape[1] :]

    def get_config(self):
        config = self._vae_config()
        # Bernoulli pixels only: not arguments of this model.
        del config["likelihood"], config["decoder_log_var"]
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "filters": list(self.filters),
                "lstm_filters": self.lstm_filters,
                "decoder_convs": self.decoder_convs,
                "first_frame_components": self.first_frame_components,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def learned_prior_vae(
    input_shape=(20, 32, 32, 1),
    latent_dim=32,
    filters=(32, 64),
    lstm_filters=64,
    decoder_convs=2,
    seed=None,
    beta=1.0,
    first_frame_components=0,
    **kwargs,
):
    """Builds a `LearnedPriorVAE`: a video VAE with a learned prior p(z_t | z_<t).

    Args:
        input_shape, latent_dim, filters, lstm_filters, decoder_convs, seed:
            see `LearnedPriorVAE`.
        beta, first_frame_components: see `LearnedPriorVAE`.
        **kwargs: Standard `keras.Model` arguments (`name`, `dtype`).

    Returns:
        A `LearnedPriorVAE`, not yet compiled.

    Example:

    >>> model = learned_prior_vae(input_shape=(6, 16, 16, 1), latent_dim=4,
    ...                           filters=(8,), lstm_filters=8)
    >>> model.latent_shape
    (6, 4)

    Introduced in: course/09_learned_temporal_prior.ipynb
    """
    return LearnedPriorVAE(
        input_shape=input_shape,
        latent_dim=latent_dim,
        filters=filters,
        lstm_filters=lstm_filters,
        decoder_convs=decoder_convs,
        seed=seed,
        beta=beta,
        first_frame_components=first_frame_components,
        **kwargs,
    )
