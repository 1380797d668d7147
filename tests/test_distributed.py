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
    "train.device=cpu",  # gloo on CPU: on a one-GPU machine rank 1 would otherwise ask for cuda:1
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _retry_on_port_clash(run, attempts: int = 3):
    """Run ``run(port)`` with a fresh free port; retry when another process took the port
    between choosing it and binding it (the rendezvous needs a port number, not a socket)."""
    for i in range(attempts):
        try:
            return run(_free_port())
        except Exception as exc:
            text = str(exc).lower()
            if i == attempts - 1 or not ("address already in use" in text or "eaddrinuse" in text):
                raise


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
    _retry_on_port_clash(lambda port: mp.spawn(
        _worker, args=(2, port, str(scenes / "frames"), str(tmp_path)), nprocs=2, join=True))
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
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(port: int) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={port}", "-m",
               "memderain", "train", "--config", "paper", "--data", str(scenes / "frames"),
               "--out", str(out), "--overwrite", *[a for s in TINY for a in ("--set", s)]]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300,
                              env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        return proc

    proc = _retry_on_port_clash(run)
    assert proc.stdout.count("finished step 3") == 1  # rank 0 only
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["train_state"]["step"] == 3 and ckpt["train_state"]["world_size"] == 2
