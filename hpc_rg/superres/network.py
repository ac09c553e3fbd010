"""The fully convolutional super-resolution network (Efthymiou, Beach, Melko 2019).

Input: a configuration at size L, shape ``(B, L, ..., L)`` (``dims`` lattice axes), spins
as ±1 floats or φ⁴ fields. Layers: nearest-neighbour upsampling ×2 (every site becomes a
2^dims block of copies), then ``depth`` convolutions with circular (periodic) padding and
``width`` hidden channels. Only kernels carry weights, so a network trained on L/2 → L
applies unchanged to any L → 2L ("weight reuse across sizes").

Output, shape ``(B, 2L, ..., 2L)``:

* spins: the logit of P(s = +1) per site; the configuration is *sampled* (Bernoulli),
  never rounded (Efthymiou et al., appendix A);
* φ⁴: a mean and a learned per-site log noise scale; φ = mean + exp(log_scale)·ε.

A temperature-conditioned network takes one more constant input channel holding the
normalized temperature (T − t_shift)/t_scale of the *output* configuration.

Two-pass output (``two_pass``): the factorised output samples every fine site
independently given the coarse configuration, so it cannot produce correlations between
fine sites beyond what the coarse field implies. With ``two_pass`` the output factorises
exactly as p(σ | c) = p(σ_A | c) · p(σ_B | σ_A, c) over the two checkerboard sublattices
(A: even parity of the fine site): pass 1 sees the coarse field only and gives sublattice
A, pass 2 also sees the sampled A spins (two extra input channels: the known fine values
and their mask) and gives sublattice B. Training is teacher-forced (pass 2 sees the true
A spins), so the loss is still the exact negative log-likelihood.
A :class:`NetworkBank` holds one network per temperature (the paper's setup) or one
shared conditioned network, with a single ``forward`` over inputs ``(n_T, B, *lattice)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..rg.blocking import upsample


@dataclass(frozen=True)
class NetworkSpec:
    """Everything needed to rebuild a bank (stored in the model file)."""

    dims: int
    depth: int = 3
    width: int = 16
    kernel: int = 3
    field: str = "spin"  #: "spin" (Bernoulli output) or "phi4" (Gaussian output)
    conditioned: bool = False
    temperatures: tuple[float, ...] = (1.0,)  #: training temperatures (or couplings)
    two_pass: bool = False  #: sublattice A, then B given A (see the module docstring)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["temperatures"] = [float(t) for t in self.temperatures]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkSpec":
        d = dict(d)
        d["temperatures"] = tuple(float(t) for t in d["temperatures"])
        return cls(**d)


_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class SuperResolutionCNN(nn.Module):
    """One L → 2L network. ``forward(x (B, *lattice), t (B,) or None) -> (B, C, *2·lattice)``.

    ``C`` = 1 (spin logits) or 2 (φ⁴ mean, log scale). The upsampled input is added to the
    spin logits / φ mean through a learned scalar skip, so an untrained network already
    copies the coarse configuration and the convolutions learn the fluctuations.
    """

    def __init__(self, dims: int, depth: int, width: int, kernel: int, field: str,
                 conditioned: bool, two_pass: bool = False):
        super().__init__()
        conv = _CONV[dims]
        self.dims, self.field, self.conditioned = dims, field, conditioned
        self.two_pass = two_pass
        c_in = (2 if conditioned else 1) + (2 if two_pass else 0)
        c_out = 2 if field == "phi4" else 1
        layers: list[nn.Module] = []
        for i in range(depth):
            last = i == depth - 1
            layers.append(conv(c_in if i == 0 else width, c_out if last else width, kernel,
                               padding=kernel // 2, padding_mode="circular"))
            if not last:
                layers.append(nn.SiLU())
        self.body = nn.Sequential(*layers)
        self.skip = nn.Parameter(torch.ones(1))  # 1-d: DeepSpeed broadcasts bytes views

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None,
                known: torch.Tensor | None = None) -> torch.Tensor:
        """``known`` (B, *2L): fine values on sublattice A for pass 2 of a two-pass
        network (None: pass 1, nothing known)."""
        up = upsample(x, self.dims).unsqueeze(1)  # (B, 1, *2L)
        h = [up]
        if self.conditioned:
            shape = (x.shape[0], 1) + (1,) * self.dims
            h.append(t.reshape(shape).to(up.dtype).expand_as(up))
        if self.two_pass:
            if known is None:
                h += [torch.zeros_like(up), torch.zeros_like(up)]
            else:
                mask = sublattice_a(up.shape[2:], up.device).to(up.dtype).expand_as(up)
                h += [known.unsqueeze(1).to(up.dtype) * mask, mask]
        out = self.body(torch.cat(h, dim=1) if len(h) > 1 else up)
        return torch.cat([out[:, :1] + self.skip * up, out[:, 1:]], dim=1)


class NetworkBank(nn.Module):
    """One network per temperature, or one conditioned network shared by all.

    ``forward(x)`` with ``x`` of shape ``(n_T, B, *lattice)`` returns ``(n_T, B, C, *2L)``;
    row k of ``x`` must be inputs for temperature index k. ``t_out`` (n_T,) optionally
    overrides the conditioning temperatures (conditioned banks only).
    """

    def __init__(self, spec: NetworkSpec):
        super().__init__()
        self.spec = spec
        n = 1 if spec.conditioned else len(spec.temperatures)
        self.nets = nn.ModuleList(
            SuperResolutionCNN(spec.dims, spec.depth, spec.width, spec.kernel, spec.field,
                               spec.conditioned, spec.two_pass) for _ in range(n))
        temps = torch.tensor(spec.temperatures, dtype=torch.float64)
        shift = float(temps.mean())
        scale = float(temps.std()) if len(temps) > 1 and float(temps.std()) > 0 else 1.0
        self.t_shift, self.t_scale = shift, scale

    def net_for(self, k: int) -> SuperResolutionCNN:
        return self.nets[0 if self.spec.conditioned else k]

    def forward_one(self, k: int, x: torch.Tensor, t_out: float | None = None,
                    known: torch.Tensor | None = None) -> torch.Tensor:
        """Inputs ``(B, *lattice)`` at temperature index ``k`` -> ``(B, C, *2L)``;
        ``known``: sublattice-A values for pass 2 of a two-pass network."""
        t = None
        if self.spec.conditioned:
            temp = self.spec.temperatures[k] if t_out is None else t_out
            t = torch.full((x.shape[0],), (temp - self.t_shift) / self.t_scale,
                           dtype=x.dtype, device=x.device)
        return self.net_for(k)(x, t, known)

    def forward(self, x: torch.Tensor, t_out=None, target: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_T, B, *L) -> (n_T, B, C, *2L)``. A two-pass bank needs the fine ``target``
        (n_T, B, *2L) for teacher forcing: sublattice A from pass 1, B from pass 2 given
        the true A values, so a per-site loss is the exact negative log-likelihood."""
        if self.spec.two_pass and target is None:
            raise ValueError("a two-pass network is trained with the fine target (teacher forcing)")
        outs = []
        for k in range(x.shape[0]):
            t = None if t_out is None else float(t_out[k])
            out = self.forward_one(k, x[k], t)
            if self.spec.two_pass:
                out2 = self.forward_one(k, x[k], t, known=target[k])
                mask = sublattice_a(out.shape[2:], out.device)
                out = torch.where(mask, out, out2)
            outs.append(out)
        return torch.stack(outs)


def sublattice_a(shape, device) -> torch.Tensor:
    """Boolean mask (*shape) of the fine sites with even coordinate sum (sublattice A)."""
    from ..models.lattice import checkerboard_mask
    return checkerboard_mask(tuple(int(n) for n in shape), 0, device=device)


def sample_output(out: torch.Tensor, field: str, uniform: torch.Tensor,
                  normal: torch.Tensor | None = None) -> torch.Tensor:
    """Draw a configuration from network output ``out`` (B, C, *2L).

    Spins: s = +1 where ``uniform < sigmoid(logit)``, else −1 (float). φ⁴: mean +
    exp(log_scale)·``normal``. ``uniform``/``normal`` have shape (B, *2L).
    """
    if field == "spin":
        p = torch.sigmoid(out[:, 0])
        return torch.where(uniform < p, 1.0, -1.0).to(out.dtype)
    return out[:, 0] + torch.exp(out[:, 1]) * normal
