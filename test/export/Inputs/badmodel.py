"""A tiny model using an aten op that tir does not map (bessel_j0), for the exporter's error test."""
import torch


class Bessel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        return torch.special.bessel_j0(h)  # no tir mapping


def make():
    return Bessel(), (torch.randn(2, 4),), {0: {0: "B"}}
