"""One rank of test_distributed.py's DDP run (started there by torchrun, 2 CPU processes on gloo).

It trains through the real command line (`gss_convert.cli.main`, as `torchrun ... -m
gss_convert.cli train` would) and writes what this rank saw to OUT/rank<R>.pt:

  a/  `train all` uninterrupted: stage 1, stage 2 (reading rank 0's vqvae.pt) and the baseline;
  b/  `train stage1` interrupted on every rank at the same iteration, after its first checkpoint
      (as Ctrl-C to the process group would), then `train stage1 --resume` from that checkpoint.

Usage: ddp_worker.py DATA CONFIG OUT INTERRUPT_AT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch


def main(data: str, config: str, out: Path, interrupt_at: int) -> None:
    torch.set_num_threads(1)
    from gss_convert import cli
    from gss_convert.augment import RandomBatcher
    from gss_convert.distributed import distributed_session
    from gss_convert.train import Trainer

    runs: list[dict] = []
    real_run = Trainer.run

    def recording_run(self: Trainer, stage: str) -> dict:
        result = real_run(self, stage)
        runs.append(
            {
                "out": self.paths.root.name,
                "stage": stage,
                "losses": self.losses.get(stage, []),
                "model": result["model"],
            }
        )
        return result

    Trainer.run = recording_run
    common = ["--config", config, "--data", data, "--device", "cpu"]
    # one process group for the three commands (each cli.main joins it, as distributed_session lets it)
    session = distributed_session("cpu")
    session.__enter__()
    codes = [cli.main(["train", "all", "--out", str(out / "a"), *common])]

    real_next = RandomBatcher.next
    calls = 0

    def interrupting_next(self: RandomBatcher):
        nonlocal calls
        calls += 1
        if calls > interrupt_at:  # the same call on every rank: they draw in lockstep
            raise KeyboardInterrupt
        return real_next(self)

    RandomBatcher.next = interrupting_next
    codes.append(cli.main(["train", "stage1", "--out", str(out / "b"), *common]))
    RandomBatcher.next = real_next
    codes.append(cli.main(["train", "stage1", "--out", str(out / "b"), "--resume", *common]))

    rank = int(os.environ["RANK"])
    torch.save(
        {"codes": codes, "runs": runs, "world_size": int(os.environ["WORLD_SIZE"])},
        out / f"rank{rank}.pt",
    )
    session.__exit__(None, None, None)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
