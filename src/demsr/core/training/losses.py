"""Training loss: elevation L1/MSE plus an optional gradient (slope) term.

Errors are divided by each patch's relief scale (its mean local absolute
deviation), so a 1 m lidar tile and a 4 km deep ocean trench weigh alike and
no absolute elevation enters the loss.
"""
from __future__ import annotations

from ..by_name import Registry

# name -> elementwise error reduced to its mean, f(prediction, target); the first is the default
LOSSES: Registry = Registry("loss")


@LOSSES.register("l1")
def _l1(p, t):
    import torch.nn.functional as F

    return F.l1_loss(p, t)


@LOSSES.register("mse")
def _mse(p, t):
    import torch.nn.functional as F

    return F.mse_loss(p, t)


def patch_scale(lr, radius: int = 3, eps: float = 1e-3):
    """Per-patch relief scale (B,1,1,1) from the LR input; loss weighting only."""
    from ..nets.local_norm import local_stats

    _, spread = local_stats(lr, radius, eps)
    return spread.mean(dim=(1, 2, 3), keepdim=True)


def sr_loss(pred, target, scale, kind: str = "l1", gradient_weight: float = 0.0):
    p, t = pred / scale, target / scale
    fn = LOSSES.get(kind)
    loss = fn(p, t)
    if gradient_weight > 0:
        gx = lambda z: z[..., :, 1:] - z[..., :, :-1]  # noqa: E731
        gy = lambda z: z[..., 1:, :] - z[..., :-1, :]  # noqa: E731
        loss = loss + gradient_weight * (fn(gx(p), gx(t)) + fn(gy(p), gy(t)))
    return loss
