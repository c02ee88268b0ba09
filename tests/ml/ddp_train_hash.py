"""Run under torchrun by tests/ml/test_distributed.py: train from a manifest, then write this rank's
weight hash to HASH_DIR/rank<N>.sha256 so the test can prove every rank ends with the same model.

The hash is a test concern, so it lives here and not in the trainer: the script drives the same
`Trainer` that `segstudio train` uses and reads the trained module afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segstudio.ml.device import pick_device
from segstudio.ml.distributed import DistContext
from segstudio.ml.manifest import TrainManifest
from segstudio.ml.progress import ProgressWriter
from segstudio.ml.train import TrainConfig, Trainer, state_hash


def main(manifest_path: str, hash_dir: str) -> int:
    manifest = TrainManifest.load(manifest_path)
    config = TrainConfig.from_mapping(manifest.settings)
    dist = DistContext.from_env()
    device = dist.device_for(pick_device(config.device))
    dist.init(device)
    try:
        trainer = Trainer(manifest, config, ProgressWriter(enabled=dist.is_main), dist, device)
        trainer.fit(lambda: False)
        Path(hash_dir).mkdir(parents=True, exist_ok=True)
        (Path(hash_dir) / f"rank{dist.rank}.sha256").write_text(state_hash(trainer.module) + "\n")
    finally:
        dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
