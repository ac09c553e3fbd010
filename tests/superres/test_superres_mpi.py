"""DeepSpeed data parallelism under real MPI: different data per rank, identical weights."""

import pytest
import torch

from hpc_rg.config import config_from_dict
from hpc_rg.parallel.comms import Comms
from hpc_rg.pipeline.signals import StopFlag
from hpc_rg.superres.network import NetworkBank, NetworkSpec
from hpc_rg.train.cnn_loop import LoopState, Trainer
from hpc_rg.train.engine import deepspeed_config

pytestmark = pytest.mark.mpi


class _Quiet:
    def update(self, *a, **k):
        pass


def test_trainer_keeps_parameters_identical_across_ranks(shared_tmp):
    import os
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from mpi4py import MPI

    from hpc_rg.parallel.torch_dist import process_group
    world = MPI.COMM_WORLD
    cfg = config_from_dict({"run": {"seed": 1, "output": str(shared_tmp)},
                            "sample": {"L": 8, "temperatures": [2.0, 3.0]},
                            "train": {"epochs": 2, "batch_size": 4, "checkpoint_every": 1000,
                                      "network": {"depth": 2, "width": 4}}})
    comms = Comms(world, 1, "cpu")
    g = torch.Generator().manual_seed(100 + world.Get_rank())  # different data per rank
    train_x = torch.randint(0, 2, (2, 16, 8, 8), generator=g).float() * 2 - 1
    val_x = torch.randint(0, 2, (2, 4, 8, 8), generator=g).float() * 2 - 1
    torch.manual_seed(7)
    spec = NetworkSpec(dims=2, depth=2, width=4, temperatures=(2.0, 3.0))
    import deepspeed
    with process_group(world, "gloo", comms.local_rank) as holder:
        holder["bank"] = NetworkBank(spec)
        before = [p.detach().clone() for p in holder["bank"].parameters()]
        engine, opt, _, _ = deepspeed.initialize(model=holder["bank"],
                                                 model_parameters=holder["bank"].parameters(),
                                                 config=deepspeed_config(cfg.train.batch_size, cfg.train.learning_rate, cfg.train.deepspeed, world.Get_size()))
        holder.update(engine=engine, opt=opt)
        trainer = Trainer(holder["bank"], train_x, val_x, cfg, "majority", comms, "cpu",
                          shared_tmp / "ck", StopFlag(), _Quiet())
        state = trainer.run(engine, LoopState())
        params = [p.detach().clone() for p in engine.module.parameters()]
        del engine, opt, trainer
    comms.free()
    assert state.steps == 2 * 4 and len(state.history) == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, params)), "nothing trained"
    gathered = world.allgather([p.numpy() for p in params])
    for other in gathered[1:]:
        for a, b in zip(gathered[0], other):
            assert (a == b).all()
