"""Per-token negative log-likelihood of a causal LM over right-padded sequences: the one implementation behind the
training and held-out losses, the perplexity and IFD features, and `HFLLM.score`.

A token is scored when its label is not IGNORE; it is predicted from the position before it. Only the scored
positions' logits go through log-softmax (or, with `fast_head`, through the output head at all), so memory follows
the scored tokens, not batch x length x vocabulary. Gradients flow when the caller has them on (training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE = -100  # the label of a token that is context, not target (transformers' convention)
HEAD_ROWS = 512  # scored positions per output-head chunk with `fast_head` (512 x vocab 49152 x 4 bytes = 100 MB)


def pad_right(sequences: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, labels) as int64 tensors, right-padded; padding is labelled IGNORE."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.int64)
    attn = torch.zeros((len(sequences), width), dtype=torch.int64)
    lab = torch.full((len(sequences), width), IGNORE, dtype=torch.int64)
    for i, (seq, lab_i) in enumerate(zip(sequences, labels, strict=True)):
        ids[i, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.int64)
        attn[i, : len(seq)] = 1
        lab[i, : len(lab_i)] = torch.as_tensor(list(lab_i), dtype=torch.int64)
    return ids, attn, lab


def token_nll(model: Any, input_ids: Any, attention_mask: Any, labels: Any, fast_head: bool = False) -> tuple[Any, Any]:
    """(nll, rows): the loss in nats of every scored token, in row-major order, and the row each belongs to.

    `fast_head`: run the base model and put only the scored positions' hidden states through the output head (in
    chunks), for architectures whose head is a plain linear map (check with `fast_head_matches`); otherwise the
    model's own logits are used."""
    import torch

    targets = labels[:, 1:]
    rows, pos = torch.nonzero(targets != IGNORE, as_tuple=True)
    wanted = targets[rows, pos]
    if fast_head:
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        picked = hidden[rows, pos]
        head = model.get_output_embeddings()
        parts = [
            torch.nn.functional.cross_entropy(
                head(picked[s : s + HEAD_ROWS]).float(), wanted[s : s + HEAD_ROWS], reduction="none"
            )
            for s in range(0, len(wanted), HEAD_ROWS)
        ]
        nll = torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logprobs = torch.log_softmax(logits[rows, pos].float(), dim=-1)
        nll = -logprobs.gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
    return nll, rows


def fast_head_matches(model: Any, input_ids: Any) -> bool:
    """Whether `fast_head` gives the model's own losses on `input_ids` (one row, every token scored): not so with
    logit scaling or soft-capping. Run in evaluation mode, so that dropout cannot tell the two paths apart."""
    import torch

    labels = input_ids.clone()
    attention = torch.ones_like(input_ids)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            slow, _ = token_nll(model, input_ids, attention, labels)
            fast, _ = token_nll(model, input_ids, attention, labels, fast_head=True)
    finally:
        if was_training:
            model.train()
    return bool(torch.allclose(slow, fast, rtol=1e-3, atol=1e-3))


def per_row(nll: Any, rows: Any, n_rows: int) -> list[Any]:
    """The scored tokens' losses split by row (a view per row, in position order)."""
    import torch

    counts = torch.bincount(rows, minlength=n_rows).tolist()
    return list(torch.split(nll, counts))
