"""Training throughput of the ConvLSTM video VAE, against plain Keras, in one run.

    python benchmarks/video_throughput.py                  # TensorFlow
    KERAS_BACKEND=jax python benchmarks/video_throughput.py
    python benchmarks/video_throughput.py --xla            # also time XLA (slow here)
    python benchmarks/video_throughput.py --causal3d       # causal 3-D VAE vs ConvLSTM

Trains `convlstm_vae` (64x64, 20 frames, batch 16, clips already in memory)
and prints frames per second for:

- plain: the same model built from `keras.layers.ConvLSTM2D` and
  `keras.layers.TimeDistributed` (`fast=False`), compiled with Keras' defaults;
- ours (`fast=True`): `vaelib.layers.PerFrame` folds the frames into the
  batch, so each per-frame convolution runs once on 320 frames instead of
  twenty times on 16 (Keras 3's `TimeDistributed` loops over frames in
  Python and transposes the tensor twice), and `FusedConvLSTM2D` computes
  every frame's input-to-gate convolution once before the time loop and one
  fused convolution per frame inside it (the loop fully unrolled on JAX).

Both have the same weights and compute the same function (a test checks it),
so their FLOPs are equal. FLOPs are counted from the layers (multiply-adds of
every convolution, ConvLSTM gate and dense head, times 2), and a training step
is taken as 3 forward passes (forward, and a backward pass costing two). The
machine's matrix-multiply rate (2048x2048 float32, the same backend) is
measured first, and each row's FLOP/s is given as a fraction of it.

`--causal3d` instead compares, at the course's 32x32 clips, the causal 3-D
VAE of notebook 12 (`causal_video_vae`, 17 frames, 4x compression in time)
with the shipped ConvLSTM VAE's architecture (20 frames, filters 16,32,
ConvLSTM 32, `decoder_convs=2`, `skip`): training frames per second and
encoding frames per second (`predict_on_batch` of the encoder), batch 16.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402
from vaelib.layers import FusedConvLSTM2D, GaussianHead  # noqa: E402
from vaelib.models import causal_video_vae, convlstm_vae  # noqa: E402


def matmul_flops_per_second(size=2048, repeats=10):
    a = keras.random.normal((size, size), seed=0)
    b = keras.random.normal((size, size), seed=1)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
    start = time.perf_counter()
    for _ in range(repeats):
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _shape(tensors):
    return (tensors[0] if isinstance(tensors, list | tuple) else tensors).shape


def forward_flops_per_clip(model):
    """Multiply-adds of one clip's forward pass through encoder and decoder, times 2."""
    macs = 0
    for network in (model.encoder, model.decoder):
        for layer in network.layers:
            inner = getattr(layer, "layer", layer)  # TimeDistributed -> wrapped layer
            if isinstance(layer, keras.layers.InputLayer):
                continue
            in_shape, out_shape = _shape(layer.input), _shape(layer.output)
            frames = in_shape[1]
            if isinstance(inner, keras.layers.Conv2DTranspose):
                k = inner.kernel_size[0] * inner.kernel_size[1]
                macs += (
                    frames * in_shape[2] * in_shape[3] * k * in_shape[4] * inner.filters
                )
            elif isinstance(inner, keras.layers.Conv2D):
                k = inner.kernel_size[0] * inner.kernel_size[1]
                macs += (
                    frames
                    * out_shape[2]
                    * out_shape[3]
                    * k
                    * in_shape[4]
                    * inner.filters
                )
            elif isinstance(inner, keras.layers.ConvLSTM2D | FusedConvLSTM2D):
                size = inner.kernel_size
                k = size * size if isinstance(size, int) else size[0] * size[1]
                pixels = in_shape[2] * in_shape[3]
                macs += (
                    frames
                    * pixels
                    * k
                    * (in_shape[4] + inner.filters)
                    * 4
                    * inner.filters
                )
            elif isinstance(inner, GaussianHead):
                pixels = in_shape[2] * in_shape[3]
                macs += frames * pixels * in_shape[4] * inner.latent_dim * 2
    return 2 * macs


def frames_per_second(model, clips, batch_size, repeats, jit_compile):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    model.fit(clips[:batch_size], batch_size=batch_size, epochs=1, verbose=0)  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(clips, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
        best = min(best, time.perf_counter() - start)
    return clips.shape[0] * clips.shape[1] / best


def encode_frames_per_second(model, clips, batch_size, repeats):
    batches = [clips[i : i + batch_size] for i in range(0, len(clips), batch_size)]
    model.encoder.predict_on_batch(batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            model.encoder.predict_on_batch(batch)
        best = min(best, time.perf_counter() - start)
    return clips.shape[0] * clips.shape[1] / best


def causal3d_table(args):
    clips = MovingDigits.scaled(32, num_frames=20, split="train", seed=0).clips(
        args.batch_size * args.batches
    )
    models = {
        "ConvLSTM VAE (shipped sizes), 20 frames": lambda: convlstm_vae(
            (20, 32, 32, 1), filters=(16, 32), lstm_filters=32, decoder_convs=2,
            skip=True, seed=0,
        ),
        "causal 3-D VAE (notebook 12), 17 frames": lambda: causal_video_vae(seed=0),
    }  # fmt: skip
    rows = []
    for name, build in models.items():
        keras.utils.set_random_seed(0)
        model = build()
        data = clips[:, : model.data_shape[0]]
        train = frames_per_second(model, data, args.batch_size, args.repeats, "auto")
        encode = encode_frames_per_second(model, data, args.batch_size, args.repeats)
        rows.append((name, train, encode))
        print(f"  measured {name}: {train:.0f} training frames/s", flush=True)
    print(
        f"\n32x32 clips, batch {args.batch_size}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print(f"| {'model':<42} | {'train frames/s':>14} | {'encode frames/s':>15} |")
    print(f"|{'-' * 44}|{'-' * 16}|{'-' * 17}|")
    for name, train, encode in rows:
        print(f"| {name:<42} | {train:14.0f} | {encode:15.0f} |")
    print(f"\ncausal 3-D / ConvLSTM, training: {rows[1][1] / rows[0][1]:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--batches", type=int, default=4, help="batches per timed epoch"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed epochs; best is kept"
    )
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    parser.add_argument(
        "--causal3d",
        action="store_true",
        help="compare the causal 3-D VAE with the ConvLSTM VAE at 32x32 instead",
    )
    args = parser.parse_args()
    if args.causal3d:
        causal3d_table(args)
        return

    backend = keras.backend.backend()
    clips = MovingDigits(split="train").clips(args.batch_size * args.batches)
    matmul = matmul_flops_per_second()
    variants = [("plain: ConvLSTM2D + TimeDistributed", False, "auto")]
    if args.xla:
        variants.append(("plain + XLA (jit_compile=True)", False, True))
    if backend == "tensorflow":
        variants.append(("ours: fused ConvLSTM + PerFrame, no XLA", True, False))
    else:
        variants.append(("ours: fused ConvLSTM (unrolled) + PerFrame", True, "auto"))
    rows = []
    for name, fast, jit in variants:
        keras.utils.set_random_seed(0)
        model = convlstm_vae(seed=0, fast=fast)
        flops = 3 * forward_flops_per_clip(model) / model.data_shape[0]
        fps = frames_per_second(model, clips, args.batch_size, args.repeats, jit)
        rows.append((name, fps, fps * flops))
        print(f"  measured {name}: {fps:.0f} frames/s", flush=True)

    print(
        f"\nconvlstm_vae training, 20 frames of 64x64, batch {args.batch_size}, "
        f"backend "
        f"{backend}, {os.cpu_count()} CPU cores\n"
        f"training FLOPs per frame: {flops / 1e6:.0f} M (3 x forward); "
        f"matmul rate: {matmul / 1e9:.1f} GFLOP/s\n"
    )
    print(
        f"| {'variant':<42} | {'frames/s':>8} | {'GFLOP/s':>7} | {'of matmul':>9} | "
        f"{'vs plain':>8} |"
    )
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 9}|{'-' * 11}|{'-' * 10}|")
    plain = rows[0][1]
    for name, fps, flops_per_second in rows:
        print(
            f"| {name:<42} | {fps:8.0f} | {flops_per_second / 1e9:7.1f} | "
            f"{flops_per_second / matmul:8.0%} | {fps / plain:7.2f}x |"
        )


if __name__ == "__main__":
    main()
