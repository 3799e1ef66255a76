"""Each example's gradient alignment with a target (probe) gradient, from the one batched backward pass of a step.

A bandit rewarded by gradient alignment needs, for every example of a batch, the cosine between that example's
gradient and the probe set's: the first-order estimate of how much a step on the example lowers the probe loss
(LESS, Xia et al. 2024, arXiv 2402.04333, scores data by this cosine over LoRA gradients). Taking the gradients one
example at a time costs a backward pass per example. This module gets the same cosines from the batch's own
backward pass instead, layer by layer, as Goodfellow (2015, "Efficient per-example gradient computations",
arXiv 1510.01799) does for gradient norms: a linear layer y = x W^T has, for example i, the weight gradient
G_i = sum_t d_it^T x_it (d: the gradient of the loss at the layer's output, x: its input, t: the example's tokens),
so with the probe gradient P of that weight

    <G_i, P>   = sum_t d_it . (x_it P^T)
    ||G_i||^2  = sum_{t,s} (d_it . d_is) (x_it . x_is)

need only x and d, which the forward and backward passes already compute. With LoRA every trainable weight is a
linear layer's (the adapters' A and B), so the cosine is exact: equal, up to rounding, to the one from a separate
backward pass per example. With full fine-tuning only the linear layers' weights count (not the embeddings, norms
or biases), which hold nearly all the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def linear_layers(model: Any) -> list[Any]:
    """The model's linear layers whose weight is trained (the LoRA adapters' A and B, or every linear layer), less
    an output head tied to the input embeddings: its weight's gradient also has the embedding lookup's part, which
    no linear layer sees."""
    import torch

    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m.weight.requires_grad and id(m.weight) not in embeddings
    ]


class ExampleAlignment:
    """Cosines between each example's gradient and a target gradient, measured during a batched backward pass.

    Use: after a backward pass over the probe set, `set_target()` keeps the linear layers' weight gradients as the
    target; then run the batch's forward and backward passes inside `measuring(n)` (one `chunk(offset)` per
    micro-batch), and `cosines()` gives one cosine per example (NaN where an example has no gradient)."""

    def __init__(self, model: Any, keep: bool = False) -> None:
        """`keep`: also keep each example's gradient of every layer, so that `leave_out` can take examples back out
        of the step; only for low-rank (LoRA) layers, whose per-example gradients are small."""
        self.layers = linear_layers(model)
        if not self.layers:
            raise ValueError("the model has no trained linear layer to measure gradients on")
        if keep and not all(_low_rank(layer) for layer in self.layers):
            raise ValueError("leaving examples out of a step needs LoRA: full fine-tuning's gradients are too large")
        self.keep = keep
        self._kept: list[list[tuple[int, Any]]] = [[] for _ in self.layers]
        self.target: list[Any] | None = None
        self.target_norm = 0.0
        self._dots: Any = None
        self._norms: Any = None
        self._offset = 0

    def set_target(self) -> None:
        """The target gradient: the linear layers' current weight gradients (those of the probe set's loss)."""
        target = []
        for layer in self.layers:
            grad = layer.weight.grad
            target.append(grad.detach().clone() if grad is not None else layer.weight.new_zeros(layer.weight.shape))
        self.target = target
        self.target_norm = math.sqrt(sum(float((g * g).sum()) for g in target))

    @property
    def has_target(self) -> bool:
        return self.target is not None

    @contextmanager
    def measuring(self, n_examples: int) -> Iterator[None]:
        """Hooks on the linear layers while the batch's passes run; the sums start at zero for `n_examples`."""
        import torch

        if self.target is None:
            raise RuntimeError("set_target() first: there is no probe gradient to compare with")
        self._dots = torch.zeros(n_examples, dtype=torch.float64)
        self._norms = torch.zeros(n_examples, dtype=torch.float64)
        self._offset = 0
        self._kept = [[] for _ in self.layers]
        handles = [layer.register_forward_hook(self._forward_hook(k)) for k, layer in enumerate(self.layers)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def chunk(self, offset: int) -> None:
        """The next forward pass is of the examples from `offset` on (micro-batches of one step)."""
        self._offset = offset

    def _forward_hook(self, k: int) -> Any:
        def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
            if not output.requires_grad:
                return
            x = inputs[0].detach()
            offset = self._offset
            output.register_hook(lambda d: self._accumulate(k, x, d, offset))

        return hook

    def _accumulate(self, k: int, x: Any, d: Any, offset: int) -> None:
        import torch

        assert self.target is not None
        p = self.target[k].float()
        width_in, width_out = x.shape[-1], d.shape[-1]
        tokens = x[0].numel() // width_in
        if _low_rank(self.layers[k]) or width_out * width_in <= tokens * (width_in + width_out):
            # small weights (LoRA): each example's own gradient, in the precision the backward pass computes the
            # step's gradient in (bf16 products under `dtype: mixed`), summed in fp32
            compute = torch.bfloat16 if d.dtype == torch.bfloat16 else torch.float32
            x = x.reshape(x.shape[0], -1, width_in).to(compute)
            d = d.reshape(d.shape[0], -1, width_out).to(compute)
            grads = torch.einsum("bto,bti->boi", d, x).float()
            dots = (grads * p).sum(dim=(1, 2))
            norms = (grads * grads).sum(dim=(1, 2))
            if self.keep:
                self._kept[k].append((offset, grads))
        else:  # large weights: the sums over token pairs, without forming any example's gradient
            x = x.reshape(x.shape[0], -1, width_in).float()
            d = d.reshape(d.shape[0], -1, width_out).float()
            dots = torch.einsum("bto,bto->b", d, x @ p.T)
            norms = torch.einsum("bts,bts->b", d @ d.transpose(1, 2), x @ x.transpose(1, 2))
        rows = slice(offset, offset + x.shape[0])
        self._dots[rows] += dots.double()
        self._norms[rows] += norms.double()

    def leave_out(self, keep: list[bool], scale: float) -> None:
        """Replace the layers' weight gradients by those of the kept examples alone (after the last `measuring`
        block): the sum of their gradients times `scale`, the batch's assistant-token count over the kept
        examples' (the batch loss is a mean over its tokens), as if the step had been taken on them only."""
        import torch

        if not self.keep:
            raise RuntimeError("ExampleAlignment(keep=True) is needed to leave examples out")
        mask = torch.tensor(keep, dtype=torch.float32) * scale
        for layer, chunks in zip(self.layers, self._kept, strict=True):
            total = torch.zeros_like(layer.weight)
            for offset, grads in chunks:
                total += torch.einsum("b,boi->oi", mask[offset : offset + grads.shape[0]], grads)
            layer.weight.grad = total.to(layer.weight.dtype)

    def cosines(self) -> list[float]:
        """One cosine per example of the last `measuring` block; NaN for an example without gradient."""
        if self._dots is None:
            return []
        out = []
        for dot, norm2 in zip(self._dots.tolist(), self._norms.tolist(), strict=True):
            scale = math.sqrt(max(norm2, 0.0)) * self.target_norm
            out.append(dot / scale if scale > 0 else float("nan"))
        return out


LOW_RANK = 256  # a weight with a side this small (a LoRA adapter's) has per-example gradients cheap to form


def _low_rank(layer: Any) -> bool:
    return min(layer.weight.shape) <= LOW_RANK
