"""How fast are moving-digit clips made? Clips per second, several ways, one run.

    python benchmarks/data_generation.py
    python benchmarks/data_generation.py --clips 4000

Rows: `MovingDigits.clips_uint8` (vectorised numpy), `.clips` (float32 in
[0, 1]), the `tf.data` pipeline of `.as_dataset` (first epoch, which draws the
clips; later epochs read its cache), and, as the baseline, TFDS' own recipe
`tfds.video.moving_sequence.image_as_moving_sequence` mapped over digit pairs
in a `tf.data` pipeline, as its Moving MNIST card suggests. All make 20-frame
64x64 clips of two 28x28 digits. Goal: over 1,000 clips/s, so that making data
is never what slows training.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_datasets.video import moving_sequence  # noqa: E402

from vaelib.data import MovingDigits  # noqa: E402


def rate(function, clips, repeats=3):
    function(min(clips, 64))  # warm up
    best = min(_timed(function, clips) for _ in range(repeats))
    return clips / best


def _timed(function, clips):
    start = time.perf_counter()
    function(clips)
    return time.perf_counter() - start


def tfds_recipe(generator, clips):
    digits = tf.constant(generator._digits_uint8[..., None])
    index = tf.data.Dataset.range(2 * clips).map(
        lambda i: tf.random.stateless_uniform(
            (), (0, i), 0, len(generator.digits), tf.int32
        )
    )

    def animate(i):
        return moving_sequence.image_as_moving_sequence(
            tf.gather(digits, i), sequence_length=20, output_size=(64, 64), velocity=0.1
        ).image_sequence

    dataset = (
        index.map(animate, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(2)
        .map(lambda pair: tf.reduce_max(pair, axis=0))
        .batch(64)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in dataset:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=2000)
    args = parser.parse_args()
    generator = MovingDigits(split="train")

    def pipeline(clips):
        for _ in generator.as_dataset(clips, batch_size=16, shuffle=True, cache=False):
            pass

    rows = [
        ("MovingDigits.clips_uint8 (numpy)", rate(generator.clips_uint8, args.clips)),
        ("MovingDigits.clips (float32)", rate(generator.clips, args.clips)),
        ("MovingDigits.as_dataset (tf.data)", rate(pipeline, args.clips)),
        (
            "TFDS image_as_moving_sequence",
            rate(lambda n: tfds_recipe(generator, n), args.clips),
        ),
    ]
    baseline = rows[-1][1]
    print(
        f"\nMoving digits, 20 frames of 64x64, two 28x28 digits, {args.clips} clips, "
        f"{os.cpu_count()} CPU cores ({generator.digit_source} digits)\n"
    )
    print(f"| {'generator':<34} | {'clips/s':>9} | {'frames/s':>10} | {'vs TFDS':>8} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 12}|{'-' * 10}|")
    for name, clips_per_second in rows:
        print(
            f"| {name:<34} | {clips_per_second:9.0f} | {20 * clips_per_second:10.0f} "
            f"| {clips_per_second / baseline:7.1f}x |"
        )
    print(
        f"\nGoal: over 1,000 clips/s. Met by the numpy generator: {rows[0][1] > 1000}"
    )
    same = np.array_equal(generator.clips(3), generator.clips(9)[:3])
    print(f"Deterministic per clip index: {same}")


if __name__ == "__main__":
    main()
