"""train.flow.lr_schedule in the flow optimizer loop: the learning rate each step sees, and a
level stopped by a signal and resumed from its checkpoint continuing the schedule."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from mpi4py import MPI

from hpc_rg.config.sections import FlowConfig
from hpc_rg.errors import StoppedBySignal
from hpc_rg.parallel.comms import Comms
from hpc_rg.progress import Progress
from hpc_rg.train import flow_loop
from hpc_rg.train.flow_loop import FlowLoopState, FlowTrainer

STEPS, LR = 10, 0.01


class Engine:
    """The part of a DeepSpeed engine the loop uses, around a real Adam with two parameter
    groups (the second at a tenth of the rate, like a learned coupling's); records the
    learning rates every optimizer step is taken with."""

    def __init__(self, checkpoint=None):
        self.w = torch.nn.Parameter(torch.ones(3))
        self.kappa = torch.nn.Parameter(torch.ones(1))
        self.optimizer = torch.optim.Adam([{"params": [self.w], "lr": LR},
                                           {"params": [self.kappa], "lr": LR / 10}])
        if checkpoint is not None:  # as DeepSpeed's load_checkpoint restores the engine
            with torch.no_grad():
                self.w.copy_(checkpoint["w"])
                self.kappa.copy_(checkpoint["kappa"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.module, self.lrs = None, []

    def train(self):
        pass

    def eval(self):
        pass

    def __call__(self, coarse, lpc, reg, gen):
        loss = (self.w ** 2).sum() + (self.kappa ** 2).sum() + 0 * coarse.sum()
        return loss, torch.zeros(coarse.shape[0], coarse.shape[1])

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.lrs.append([g["lr"] for g in self.optimizer.param_groups])
        self.optimizer.step()
        self.optimizer.zero_grad()


class StopAt:
    def __init__(self, step=None):
        self.step, self.state = step, None

    def requested(self, comms):
        return self.state is not None and self.state.steps == self.step


def train(schedule, monkeypatch, engine, state, stop=None):
    """Run the level's loop; returns the checkpoints it wrote (loop state, engine state)."""
    saved = []
    monkeypatch.setattr(flow_loop, "save_checkpoint", lambda eng, d, st, comm: saved.append(
        copy.deepcopy((vars(st), {"w": eng.w.detach(), "kappa": eng.kappa.detach(),
                                  "optimizer": eng.optimizer.state_dict()}))))
    cfg = SimpleNamespace(run=SimpleNamespace(seed=1), train=SimpleNamespace(
        checkpoint_every=1000, flow=FlowConfig(lr_schedule=schedule, batch=2, steps=STEPS)))
    stop = stop or StopAt()
    stop.state = state
    trainer = FlowTrainer(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4), cfg,
                          Comms(MPI.COMM_SELF), None, stop,
                          Progress("train", STEPS, active=False))
    try:
        trainer.run(engine, state)
    except StoppedBySignal:
        pass
    return saved


def test_cosine_schedule_follows_the_formula_and_continues_after_resume(monkeypatch):
    straight = Engine()
    train("cosine", monkeypatch, straight, FlowLoopState())
    expected = [0.5 * (1 + math.cos(math.pi * k / STEPS)) for k in range(STEPS)]
    assert [lr for lr, _ in straight.lrs] == pytest.approx([LR * c for c in expected],
                                                           rel=1e-12)
    assert [lr for _, lr in straight.lrs] == pytest.approx([LR / 10 * c for c in expected],
                                                           rel=1e-12)
    assert straight.lrs[-1][0] < 0.03 * LR

    first = Engine()
    (loop, checkpoint), = train("cosine", monkeypatch, first, FlowLoopState(), StopAt(4))
    assert loop["steps"] == 4 and len(first.lrs) == 4
    resumed = Engine(checkpoint)
    train("cosine", monkeypatch, resumed, FlowLoopState(**loop))
    assert first.lrs + resumed.lrs == straight.lrs
    torch.testing.assert_close(resumed.w, straight.w, rtol=0, atol=0)


def test_constant_schedule_leaves_the_optimizer_alone(monkeypatch):
    engine = Engine()
    train("constant", monkeypatch, engine, FlowLoopState())
    assert engine.lrs == [[LR, LR / 10]] * STEPS
    assert all("initial_lr" not in g for g in engine.optimizer.param_groups)
