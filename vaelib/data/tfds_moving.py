"""A TFDS builder for moving digits, so `tfds.load("moving_digits")` works offline.

Importing this module registers the builder:

    import tensorflow_datasets as tfds
    import vaelib.data.tfds_moving  # noqa: F401
    train = tfds.load("moving_digits/small", split="train", data_dir="/tmp/tfds")

Nothing is downloaded: the clips are drawn by `vaelib.data.MovingDigits` from
the digits `load_digits_images` finds (MNIST when cached, else scikit-learn's
digits), train clips from train digits and test clips from test digits.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from vaelib.data.moving import MovingDigits as MovingDigitsClips


@dataclasses.dataclass
class MovingDigitsConfig(tfds.core.BuilderConfig):
    """Shape and size of one variant of the data set."""

    frame_size: int = 64
    num_frames: int = 20
    num_digits: int = 2
    digit_size: int = 28
    speed: float = 3.6
    train_clips: int = 10_000
    test_clips: int = 2_000
    stochastic: bool = False


class MovingDigits(tfds.core.GeneratorBasedBuilder):
    """Moving digits: Moving-MNIST-style clips drawn deterministically, offline."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Stochastic configs: a new direction at every bounce.",
    }
    _SMALL = MovingDigitsConfig(
        name="small",
        description="32x32 frames, 10 frames, two 14x14 digits: for a laptop CPU.",
        frame_size=32,
        num_frames=10,
        digit_size=14,
        speed=1.8,
        train_clips=2_000,
        test_clips=400,
    )
    _STANDARD = MovingDigitsConfig(
        name="standard",
        description="20 frames of 64x64, two 28x28 digits: Moving MNIST's shape.",
    )
    BUILDER_CONFIGS = [
        _SMALL,
        _STANDARD,
        *(
            dataclasses.replace(
                config,
                name=f"{config.name}_stochastic",
                description=f"As {config.name}, with a new random direction at "
                "every bounce (Stochastic Moving MNIST, Denton & Fergus 2018).",
                stochastic=True,
            )
            for config in (_SMALL, _STANDARD)
        ),
    ]

    def _info(self):
        config = self.builder_config
        clip_shape = (config.num_frames, config.frame_size, config.frame_size, 1)
        return self.dataset_info_from_configs(
            description=__doc__.split("\n")[0],
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(clip_shape),
                    "labels": tfds.features.Tensor(
                        shape=(config.num_digits,), dtype=np.int64
                    ),
                    "velocity": tfds.features.Tensor(
                        shape=(config.num_digits, 2), dtype=np.float32
                    ),
                    "bounces": tfds.features.Tensor(
                        shape=(config.num_digits, config.num_frames), dtype=np.bool_
                    ),
                }
            ),
            supervised_keys=None,
            homepage="https://www.cs.toronto.edu/~nitish/unsupervised_video/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        return {
            "train": self._generate_examples("train", config.train_clips),
            "test": self._generate_examples("test", config.test_clips),
        }

    def _generate_examples(self, split, num_clips):
        config = self.builder_config
        clips = MovingDigitsClips(
            frame_size=config.frame_size,
            num_digits=config.num_digits,
            num_frames=config.num_frames,
            digit_size=config.digit_size,
            speed=config.speed,
            split=split,
            seed=0 if split == "train" else 1,
            stochastic=config.stochastic,
        )
        for start in range(0, num_clips, 256):
            count = min(256, num_clips - start)
            videos = clips.clips_uint8(count, start)
            info = clips.metadata(count, start)
            for offset in range(count):
                yield (
                    start + offset,
                    {
                        "video": videos[offset],
                        "labels": info["labels"][offset].astype(np.int64),
                        "velocity": info["velocity"][offset].astype(np.float32),
                        "bounces": info["bounces"][offset],
                    },
                )
