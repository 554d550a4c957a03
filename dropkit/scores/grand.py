"""GraNd (Paul et al., 2021): the L2 norm of the per-sample loss gradient.

``GraNd(x, y) = || grad_theta CE(f_theta(x), y) ||_2`` over *all* trainable parameters, with the
model in eval mode (BatchNorm uses its running statistics, so each sample's gradient is its own).

Score convention of :mod:`dropkit.scores`: higher = more useful = kept first.  A large gradient
norm marks a sample the model still has to learn from (a *hard* sample), and Paul et al. keep
those, so the norm itself is the score.

Two exact batched computations, no per-sample Python loop:

* **Layer identities** (as Opacus computes per-sample gradient norms).  When every trainable
  parameter belongs to an ``nn.Linear``, an ``nn.Conv2d`` (one group, zero padding) or an
  ``nn.BatchNorm1d/2d`` in eval mode, each called once per forward, one backward pass of the
  *summed* loss gives each layer's output gradient ``g_i`` for every sample (with a summed loss and
  no cross-sample interaction, the gradient with respect to sample ``i``'s output is sample
  ``i``'s own gradient), and the per-sample squared norms follow in closed form:

  - Linear on ``[B, D]`` input ``a_i``: ``||dW_i||^2 + ||db_i||^2 = (||a_i||^2 + 1) ||g_i||^2``
    (without the ``+ 1`` when there is no trainable bias);
  - Linear on ``[B, L, D]`` and Conv2d (input unfolded into ``L`` patches ``a_il``):
    ``||dW_i||^2 = ||sum_l g_il a_il^T||^2``, from the per-sample ``[C_out, C_in k k]`` product or
    from Gram matrices ``sum_{l,m} (a_il . a_im)(g_il . g_im)``, whichever is smaller;
    ``||db_i||^2 = ||sum_l g_il||^2``;
  - BatchNorm (eval) with normalised input ``h = (a - mean) / sqrt(var + eps)``:
    ``||dgamma_i||^2 = sum_c (sum_pos g h)^2``, ``||dbeta_i||^2 = sum_c (sum_pos g)^2``.

  dropkit's "linear", "mlp", "cnn", VGG and ResNet models all take this path.
* **torch.func** otherwise (convolutions, ...): ``vmap(grad(loss))`` over chunks of
  ``batch_size`` samples with :func:`torch.func.functional_call`; memory ``batch_size x
  #parameters`` floats per chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

GRAD_NORM_METHODS: tuple[str, ...] = ("auto", "identity", "vmap")
# Identity path on CPU: samples per forward/backward are capped so that the hooked activations
# hold about CPU_ACTIVATION_FLOATS floats (the small conv net runs 2048 samples ~25% faster at
# ~90 samples per pass than at 256, while the MLP, ~1.5k floats per sample, keeps whole chunks);
# the first pass of each call has at most CPU_FIRST_ROWS samples and measures the size.
CPU_ACTIVATION_FLOATS = 4_000_000
CPU_FIRST_ROWS = 32


class _IdentityUnsupported(Exception):
    """The model does not fit the layer identities (a layer reused, or an unsupported input)."""


_LAYER_TYPES = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)


def _layer_supported(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and module.padding_mode == "zeros" \
            and not isinstance(module.padding, str)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return module.track_running_stats and module.running_mean is not None
    return isinstance(module, nn.Linear)


def _trainable_owners(model: nn.Module) -> list[nn.Module] | None:
    """Modules owning trainable parameters if the layer identities cover all of them, else None."""
    owners = []
    for module in model.modules():
        if not any(p.requires_grad for p in module.parameters(recurse=False)):
            continue
        if not isinstance(module, _LAYER_TYPES) or not _layer_supported(module):
            return None
        owners.append(module)
    return owners


def _outer_sum_sq_norm(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``|| sum_l g[i, l] a[i, l]^T ||_F^2`` per sample ``i`` (float64 ``[B]``).

    ``a``: ``[B, L, P]`` layer inputs per position, ``g``: ``[B, L, Q]`` output gradients per
    position.  Either materialise the ``[B, Q, P]`` per-sample gradients or use the Gram identity
    ``sum_{l,m} (a_l . a_m)(g_l . g_m)`` (``[B, L, L]``), whichever is smaller.
    """
    length, p, q = a.shape[1], a.shape[2], g.shape[2]
    if length == 1:
        return a[:, 0].pow(2).sum(1).double() * g[:, 0].pow(2).sum(1).double()
    if p * q <= length * length:
        return torch.bmm(g.transpose(1, 2), a).pow(2).sum(dim=(1, 2)).double()
    gram_a = torch.bmm(a, a.transpose(1, 2))
    gram_g = torch.bmm(g, g.transpose(1, 2))
    return (gram_a * gram_g).sum(dim=(1, 2)).double()


def _conv_patches(module: nn.Conv2d, a: torch.Tensor) -> torch.Tensor:
    """The input patches of a convolution, ``[B, C_in kh kw, L]``: what ``F.unfold`` returns
    (same order), as one copy of a strided view of the zero-padded input (several times faster
    than ``F.unfold`` on CPU).  ``a``: the layer input ``[B, C_in, H, W]``; ``L`` is the number
    of output positions."""
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    ph, pw = module.padding
    padded = F.pad(a, (pw, pw, ph, ph)) if ph or pw else a
    batch, channels, height, width = padded.shape
    out_h, out_w = (height - dh * (kh - 1) - 1) // sh + 1, (width - dw * (kw - 1) - 1) // sw + 1
    s_b, s_c, s_h, s_w = padded.stride()
    view = padded.as_strided((batch, channels, kh, kw, out_h, out_w),
                             (s_b, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w))
    return view.reshape(batch, channels * kh * kw, out_h * out_w)


def _layer_sq_norms(module: nn.Module, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Squared norm ``[B]`` of one layer's per-sample parameter gradient (input ``a``, output
    gradient ``g``)."""
    batch = a.shape[0]
    weight = module.weight is not None and module.weight.requires_grad
    bias = module.bias is not None and module.bias.requires_grad
    total = torch.zeros(batch, dtype=torch.float64, device=a.device)
    if isinstance(module, nn.Linear):
        a3, g3 = a.reshape(batch, -1, a.shape[-1]), g.reshape(batch, -1, g.shape[-1])
    elif isinstance(module, nn.Conv2d):
        if a.ndim != 4:
            raise _IdentityUnsupported
        a3 = _conv_patches(module, a).transpose(1, 2)                  # [B, L, C_in k k]
        g3 = g.reshape(batch, g.shape[1], -1).transpose(1, 2)          # [B, L, C_out]
    else:  # BatchNorm in eval mode: y = gamma * h + beta per channel
        if a.ndim != (2 if isinstance(module, nn.BatchNorm1d) else 4):
            raise _IdentityUnsupported
        shape = (1, -1) + (1,) * (a.ndim - 2)
        g3 = g.reshape(batch, g.shape[1], -1)                           # [B, C, positions]
        if weight:  # sum_pos g h = invstd * sum_pos g (a - mean): scale [B, C], not [B, C, pos]
            centred = (a - module.running_mean.view(shape)).reshape(g3.shape)
            invstd = torch.rsqrt(module.running_var + module.eps)
            total += ((g3 * centred).sum(2) * invstd).double().pow(2).sum(1)
        if bias:
            total += g3.sum(2).double().pow(2).sum(1)
        return total
    if weight:
        total += _outer_sum_sq_norm(a3, g3)
    if bias:
        total += g3.sum(dim=1).pow(2).sum(dim=1).double()
    return total


def _identity_sq_norms(model: nn.Module, owners: list[nn.Module], x: torch.Tensor,
                       y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Per-sample squared gradient norms ``[B]`` (float64) via the layer identities, and the
    number of floats per sample in the hooked layers' outputs (the activations the identities
    read, a proxy for the working set of one sample)."""
    inputs: dict[nn.Module, torch.Tensor] = {}
    outputs: dict[nn.Module, torch.Tensor] = {}

    def record(module, args, output):
        if module in outputs or not isinstance(output, torch.Tensor) \
                or output.shape[:1] != args[0].shape[:1]:
            raise _IdentityUnsupported
        inputs[module] = args[0].detach()
        outputs[module] = output
        # Later layers get a copy: an in-place op downstream (ReLU(inplace=True)) must not
        # rewrite the tensor whose gradient we ask for.
        return output.clone()

    handles = [m.register_forward_hook(record) for m in owners]
    try:
        loss = F.cross_entropy(model(x), y, reduction="sum")
    finally:
        for h in handles:
            h.remove()
    used = [m for m in owners if m in outputs]
    grads = torch.autograd.grad(loss, [outputs[m] for m in used], allow_unused=True)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for module, g in zip(used, grads):
        if g is not None:
            total += _layer_sq_norms(module, inputs[module], g.detach())
    floats = sum(outputs[m].numel() for m in used) // max(x.shape[0], 1)
    return total, floats


def _vmap_sq_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norms ``[B]`` (float64) via ``vmap(grad)``."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    frozen = {k: v.detach() for k, v in model.named_parameters() if not v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_of_one(p, xi, yi):
        out = functional_call(model, (p, frozen, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, x, y)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for g in grads.values():
        total += g.reshape(g.shape[0], -1).to(torch.float64).pow(2).sum(dim=1)
    return total


def per_sample_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          batch_size: int = 256, *, method: str = "auto") -> torch.Tensor:
    """Exact per-sample ``||grad_theta CE(model(x_i), y_i)||_2`` over all trainable parameters.

    Args:
        model: classifier returning logits ``[B, K]``; evaluated in eval mode (its training flag
            is restored afterwards); parameters are not modified and no ``.grad`` is written.
        x: model-ready float inputs ``[N, ...]`` (normalised); moved chunk by chunk to the
            model's device.
        y: int labels ``[N]``.
        batch_size: samples per chunk (the vmap path holds ``batch_size x #parameters`` floats);
            on CPU the identity path splits a chunk into cache-sized passes (see
            ``CPU_ACTIVATION_FLOATS``), which changes the speed, not the result.
        method: ``"auto"`` (layer identity when the model allows it, else vmap), ``"identity"``
            (raise ``ValueError`` if the model does not allow it) or ``"vmap"``.

    Returns:
        float64 ``[N]`` on the CPU, in units of the loss gradient (nats per parameter unit);
        higher = harder = kept first.
    """
    if method not in GRAD_NORM_METHODS:
        raise ValueError(f"method={method!r} is not one of {GRAD_NORM_METHODS}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x [N, ...] and y [N] must have the same N, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a float (normalised) tensor, got dtype {x.dtype}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no trainable parameters")
    device = next(model.parameters()).device
    owners = _trainable_owners(model) if method != "vmap" else None
    if method == "identity" and owners is None:
        raise ValueError("method='identity' needs every trainable parameter in nn.Linear, "
                         "nn.Conv2d (groups=1, zero padding) or BatchNorm1d/2d layers; "
                         "use method='vmap'")
    use_identity = owners is not None
    was_training = model.training
    model.eval()
    out = torch.empty(x.shape[0], dtype=torch.float64)
    # On CPU the identity path runs cache-sized pieces: the first piece measures the activation
    # floats per sample, the next ones hold about CPU_ACTIVATION_FLOATS of them.
    rows = min(batch_size, CPU_FIRST_ROWS) if device.type == "cpu" else batch_size
    start = 0
    try:
        while start < x.shape[0]:
            take = rows if use_identity else batch_size
            xb = x[start:start + take].to(device)
            yb = y[start:start + take].to(device=device, dtype=torch.long)
            sq = None
            if use_identity:
                try:
                    with torch.enable_grad():
                        sq, floats = _identity_sq_norms(model, owners, xb, yb)
                    if device.type == "cpu":
                        rows = min(batch_size, max(CPU_FIRST_ROWS, CPU_ACTIVATION_FLOATS // max(floats, 1)))
                except _IdentityUnsupported:
                    if method == "identity":
                        raise ValueError("method='identity': a layer is reused or gets a non-2-D "
                                         "input; use method='vmap'") from None
                    use_identity = False
            if sq is None:
                sq = _vmap_sq_norms(model, xb, yb)
            out[start:start + xb.shape[0]] = sq.sqrt().cpu()
            start += xb.shape[0]
    finally:
        model.train(was_training)
    return out
