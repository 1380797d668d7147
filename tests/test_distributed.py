"""Multi-process training on CPU (gloo): ranks must end with identical weights and memory
items, and only rank 0 writes files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from memderain.checkpoint import load_checkpoint
from training_helpers import make_scenes

TINY = [
    "model.channels=8", "model.num_items=4", "data.crop_size=32", "data.num_workers=0",
    "train.batch_size=2", "train.threads=1", "train.progress=false", "train.image_every=0",
    "train.ckpt_minutes=0", "train.steps=3", "optim.lr=1e-3",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    from memderain.training.config import load_experiment
    from memderain.training.trainer import Trainer

    cfg = load_experiment("paper", TINY, {"data.root": data})
    trainer = Trainer(cfg, Path(out) / "run", argv=["test"])
    init_items = trainer.model.memory.items.clone()
    trainer.fit()
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    torch.save({"state": state, "init_items": init_items, "step": trainer.step},
               Path(out) / f"rank{rank}.pt")
    trainer.close()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return make_scenes(tmp_path_factory.mktemp("ddp_scenes"), scenes=2, frames=3, size=48)


def test_two_gloo_ranks_keep_identical_weights_and_memory(scenes, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(scenes / "frames"), str(tmp_path)), nprocs=2,
             join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 3
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    items = r0["state"]["memory.items"]
    assert not torch.allclose(items, r0["init_items"])  # the memory was updated (Eq. 6)
    # only rank 0 wrote the checkpoint, and it holds the common state
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert torch.equal(ckpt["state_dict"]["memory.items"], items)
    assert ckpt["train_state"]["world_size"] == 2


@pytest.mark.slow
def test_torchrun_runs_the_cli(scenes, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "memderain",
           "train", "--config", "paper", "--data", str(scenes / "frames"), "--out", str(out),
           *[a for s in TINY for a in ("--set", s)]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("finished step 3") == 1  # rank 0 only
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["train_state"]["step"] == 3 and ckpt["train_state"]["world_size"] == 2
