"""Glow over vectors, the network of BERT-flow (``app.transforms.flow``).

Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions" (NeurIPS 2018),
for d-dimensional vectors: K steps of actnorm (data-initialised), an invertible linear layer
(the LU-parametrised "1x1 convolution") and an affine coupling whose scale and shift come from a
small MLP (initialised to the identity). Each layer returns its output and the log-determinant
of its Jacobian (float (n,)); ``Glow.log_prob`` is the exact log-likelihood under N(0, I).

Own code rather than a flow library: it is ~150 lines, the whole of it is needed, and it saves
to safetensors without pickling a library's module tree.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ActNorm(nn.Module):
    """y = (x + bias) * exp(log_scale), initialised so the first batch has zero mean and unit
    variance per dimension. log|det| = sum(log_scale)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(d))
        self.log_scale = nn.Parameter(torch.zeros(d))
        self.initialized: Tensor
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not bool(self.initialized):
            with torch.no_grad():
                self.bias.copy_(-x.mean(0))
                self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
                self.initialized.fill_(True)
        return (x + self.bias) * self.log_scale.exp(), self.log_scale.sum().expand(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        return y * (-self.log_scale).exp() - self.bias


class InvertibleLinear(nn.Module):
    """y = x W^T with W = P L (U + diag(sign * exp(log_s))), P a fixed permutation, L unit
    lower-triangular, U strictly upper-triangular (Glow's LU 1x1 convolution). log|det| =
    sum(log_s)."""

    def __init__(self, d: int, generator: torch.Generator) -> None:
        super().__init__()
        w, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.p: Tensor
        self.sign: Tensor
        self.register_buffer("p", p)
        self.register_buffer("sign", torch.sign(s))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, diagonal=1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> Tensor:
        d = len(self.log_s)
        eye = torch.eye(d, device=self.log_s.device)
        lower = torch.tril(self.lower, diagonal=-1) + eye
        upper = torch.triu(self.upper, diagonal=1) + torch.diag(self.sign * self.log_s.exp())
        return self.p @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.weight().T, self.log_s.sum().expand(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        x: Tensor = torch.linalg.solve(self.weight(), y.T).T
        return x


class AffineCoupling(nn.Module):
    """Keeps the first half x1; y2 = x2 * exp(s) + t with (s, t) = MLP(x1), s bounded by tanh.
    log|det| = sum(s). The MLP's last layer starts at zero: the step starts as the identity."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.split = d // 2
        self.net = nn.Sequential(
            nn.Linear(self.split, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * (d - self.split)),
        )
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def _scale_shift(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(x1).chunk(2, dim=1)
        return 2.0 * torch.tanh(raw_s / 2.0), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        s, t = self._scale_shift(x1)
        return torch.cat([x1, x2 * s.exp() + t], dim=1), s.sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        s, t = self._scale_shift(y1)
        return torch.cat([y1, (y2 - t) * (-s).exp()], dim=1)


class Glow(nn.Module):
    """K steps of (ActNorm, InvertibleLinear, AffineCoupling) over d-dimensional vectors."""

    def __init__(self, d: int, steps: int, hidden: int, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(steps):
            layers += [ActNorm(d), InvertibleLinear(d, generator), AffineCoupling(d, hidden)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) and log|det df/dx|, per row."""
        log_det = torch.zeros(len(x), device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)  # type: ignore[operator]  # each layer defines inverse
        return z

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats, per row."""
        z, log_det = self(x)
        d = x.shape[1]
        log_p: Tensor = -0.5 * (z * z).sum(dim=1) - 0.5 * d * math.log(2 * math.pi) + log_det
        return log_p
