"""Sentence VAE for instruction augmentation (Bowman et al. 2016, "Generating Sentences from a Continuous Space").

A small GRU variational autoencoder, trained on the instructions at hand (hundreds to a few thousand, on a CPU in a
minute or two), proposes new instructions by decoding points near one instruction's posterior mean ("near") or on
the line between two ("between", the paper's homotopy). Proposals are kept only when well-formed and novel under
the Self-Instruct ROUGE-L filter (`NoveltyIndex`), and the report counts every rejection by reason, so a user sees
whether the model helps on their data.

Two devices from the paper keep the decoder from ignoring z (posterior collapse, KL -> 0): the KL term's weight is
annealed from 0 to 1 (logistic or linear over training steps), and the decoder's input words are replaced by
<unk> at a rate (word dropout), so it must lean on z to reconstruct.

    vae = SentenceVAE(VAEConfig())
    report = vae.train(instructions, epochs=60, seed=0)
    result = vae.propose(n=50, seed=0)
    for p in result.accepted: print(p.method, p.text, p.parents)
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from sftforge.lib.novelty import NoveltyIndex
from sftforge.lib.text import detokenize, normalize, reversible_tokens

# ------------------------------------------------------------------------------------------------ tokenisation

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_BAD_LAST = set(",;([{-/_~、，；（《【「『“")  # a sentence that ends on one of these was cut off


class Vocabulary:
    """Token <-> id map built from the training texts; <pad>=0, <unk>=1, <bos>=2, <eos>=3."""

    def __init__(self, itos: Sequence[str]):
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 1) -> Vocabulary:
        """Tokens seen at least min_count times, most frequent first (ties alphabetical: deterministic)."""
        counts = Counter(t for text in texts for t in reversible_tokens(text))
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in SPECIALS), key=lambda t: (-counts[t], t)
        )
        return cls(list(SPECIALS) + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in reversible_tokens(text)]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return detokenize([t for t in self.tokens(ids) if t not in (PAD, BOS, EOS)])


# ------------------------------------------------------------------------------------------------ config, reports


@dataclass(frozen=True)
class VAEConfig:
    """Model and objective. Defaults fit a few hundred to a few thousand instructions on a CPU."""

    embed_dim: int = 96
    hidden_dim: int = 128
    latent_dim: int = 32
    concat_z: bool = True  # feed z to every decoder step, not only the initial state: harder to ignore
    word_dropout: float = 0.3  # rate at which decoder input words become <unk> (paper: keeps z informative)
    kl_anneal: Literal["logistic", "linear", "none"] = "logistic"
    kl_anneal_fraction: float = (
        0.4  # share of training steps at which the KL weight reaches 0.5 (logistic) / 1 (linear)
    )
    max_beta: float = 1.0
    min_count: int = 1  # rarer tokens become <unk>
    max_len: int = 64  # longer texts (in tokens) are left out of training; decoding stops here
    min_texts: int = 20  # below this a VAE cannot learn a latent space worth sampling from
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if self.kl_anneal not in ("logistic", "linear", "none"):
            raise ValueError(f"kl_anneal must be logistic, linear or none, got {self.kl_anneal!r}")
        if not 0.0 < self.kl_anneal_fraction <= 1.0:
            raise ValueError(f"kl_anneal_fraction must be in (0, 1], got {self.kl_anneal_fraction}")
        for name in ("embed_dim", "hidden_dim", "latent_dim", "min_count", "max_len", "min_texts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class EpochStats:
    """Means per training sentence over one epoch: recon = summed token cross-entropy (nats), kl = KL(q||p)."""

    epoch: int
    recon: float
    recon_per_token: float
    kl: float
    beta: float  # KL weight at the epoch's last step
    seconds: float


@dataclass
class TrainReport:
    """What training did: per-epoch losses, active latent units (Burda et al.: Var_x E_q[z_d] > 0.01)."""

    epochs: list[EpochStats]
    n_texts: int
    skipped_long: int
    vocab_size: int
    active_units: int
    latent_dim: int
    seconds: float

    @property
    def final_recon(self) -> float:
        return self.epochs[-1].recon

    @property
    def final_kl(self) -> float:
        return self.epochs[-1].kl


@dataclass(frozen=True)
class ProposeConfig:
    """How candidates are made and which are kept."""

    near_fraction: float = 0.5  # share of candidates decoded near one text; the rest between two
    sigma: float = 0.5  # std of the Gaussian added to a posterior mean, in prior units
    alpha_low: float = 0.25  # "between": interpolation weight drawn uniformly from [alpha_low, 1 - alpha_low]
    temperature: float = 0.0  # 0: greedy decoding
    min_tokens: int = 3
    max_tokens: int = 60
    min_distinct2: float = 0.9  # distinct bigrams / bigrams: below this it is a repeat loop
    threshold: float = 0.7  # ROUGE-L F above this against the pool or accepted proposals: not novel
    novelty_tokenizer: str = "rouge"
    max_candidates_per_accept: int = 20  # give up after n * this candidates
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not 0.0 <= self.near_fraction <= 1.0:
            raise ValueError(f"near_fraction must be in [0, 1], got {self.near_fraction}")
        if not 0.0 <= self.alpha_low <= 0.5:
            raise ValueError(f"alpha_low must be in [0, 0.5], got {self.alpha_low}")
        if self.sigma < 0 or self.temperature < 0:
            raise ValueError("sigma and temperature must be >= 0")
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens {self.min_tokens} > max_tokens {self.max_tokens}")


# copy: same (normalised) text as a pool text; duplicate: as an accepted proposal; not_novel: ROUGE-L F > threshold
REJECT_REASONS = (
    "no_eos",
    "too_short",
    "too_long",
    "unk",
    "repetitive",
    "bad_ending",
    "copy",
    "duplicate",
    "not_novel",
)


@dataclass(frozen=True)
class Proposal:
    text: str
    method: Literal["near", "between"]
    parents: tuple[str, ...]
    alpha: float | None  # "between": weight of the second parent
    rouge_l: float  # best ROUGE-L F against the pool (training texts, parents, earlier acceptances)
    nearest: str  # the pool text reaching it


@dataclass
class ProposeReport:
    """Accepted proposals and the accounting: proposed == accepted + sum(rejected.values())."""

    accepted: list[Proposal]
    proposed: int
    rejected: dict[str, int]
    final_recon: float
    final_kl: float
    active_units: int

    @property
    def n_accepted(self) -> int:
        return len(self.accepted)

    @property
    def acceptance_rate(self) -> float:
        return self.n_accepted / self.proposed if self.proposed else 0.0


# ------------------------------------------------------------------------------------------------ model


class _Net(nn.Module):
    """embedding -> bidirectional GRU -> (mu, logvar) -> z -> GRU decoder (h0 from z, z at every step) -> logits."""

    def __init__(self, vocab_size: int, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.encoder = nn.GRU(cfg.embed_dim, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.to_mu = nn.Linear(2 * cfg.hidden_dim, cfg.latent_dim)
        self.to_logvar = nn.Linear(2 * cfg.hidden_dim, cfg.latent_dim)
        self.z_to_h = nn.Linear(cfg.latent_dim, cfg.hidden_dim)
        dec_in = cfg.embed_dim + (cfg.latent_dim if cfg.concat_z else 0)
        self.decoder = nn.GRU(dec_in, cfg.hidden_dim, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, vocab_size)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # (2, B, H)
        h = torch.cat([h[0], h[1]], dim=-1)
        return self.to_mu(h), self.to_logvar(h)

    def _step_input(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        emb = self.embed(ids)
        if self.cfg.concat_z:
            emb = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.size(1), -1)], dim=-1)
        return emb

    def decode_logits(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h0 = torch.tanh(self.z_to_h(z)).unsqueeze(0)
        out, _ = self.decoder(self._step_input(inputs, z), h0)
        return self.out(out)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, max_len: int, temperature: float, generator: torch.Generator | None
    ) -> list[tuple[list[int], bool]]:
        """Token ids per row of z (without <eos>) and whether <eos> was reached within max_len."""
        b = z.size(0)
        h = torch.tanh(self.z_to_h(z)).unsqueeze(0)
        tok = torch.full((b, 1), BOS_ID, dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        seqs: list[list[int]] = [[] for _ in range(b)]
        for _ in range(max_len):
            o, h = self.decoder(self._step_input(tok, z), h)
            logits = self.out(o[:, -1])
            logits[:, PAD_ID] = -math.inf
            logits[:, BOS_ID] = -math.inf
            if temperature <= 0:
                nxt = logits.argmax(-1)
            else:
                nxt = torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=generator).squeeze(1)
            for i in range(b):
                if not done[i]:
                    if nxt[i].item() == EOS_ID:
                        done[i] = True
                    else:
                        seqs[i].append(int(nxt[i]))
            if bool(done.all()):
                break
            tok = nxt.unsqueeze(1)
        return [(s, bool(d)) for s, d in zip(seqs, done)]


def _kl_weight(step: int, total: int, cfg: VAEConfig) -> float:
    """KL annealing (Bowman et al. 2016): logistic 1/(1+exp(-k(step-x0))) or linear ramp, scaled by max_beta."""
    if cfg.kl_anneal == "none":
        return cfg.max_beta
    x0 = max(1.0, cfg.kl_anneal_fraction * total)
    if cfg.kl_anneal == "linear":
        return cfg.max_beta * min(1.0, step / x0)
    k = 10.0 / x0  # near 0 at step 0, 0.5 at x0, ~1 by 2*x0
    return cfg.max_beta / (1.0 + math.exp(-k * (step - x0)))


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per row, summed over dimensions."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


# ------------------------------------------------------------------------------------------------ public class


class SentenceVAE:
    """A sentence VAE trained on the texts at hand. Not an nn.Module (its `train` trains, it does not set modes)."""

    def __init__(self, config: VAEConfig | None = None):
        self.config = config or VAEConfig()
        self.vocab: Vocabulary | None = None
        self.net: _Net | None = None
        self.texts: list[str] = []
        self.report: TrainReport | None = None

    # ---------------------------------------------------------------------------------------------- training

    def train(
        self, texts: Sequence[str], epochs: int = 60, batch_size: int = 32, lr: float = 2e-3, seed: int = 0
    ) -> TrainReport:
        """Build the vocabulary from texts and train from scratch; deterministic on CPU for a seed (and thread
        count). The global torch RNG is left as it was."""
        cfg = self.config
        texts = [t for t in dict.fromkeys(t.strip() for t in texts) if t]
        if len(texts) < cfg.min_texts:
            raise ValueError(f"need at least {cfg.min_texts} distinct non-empty training texts, got {len(texts)}")
        if epochs < 1 or batch_size < 1 or lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        vocab = Vocabulary.build(texts, cfg.min_count)
        seqs = [ids for ids in (vocab.encode(t) for t in texts) if 0 < len(ids) <= cfg.max_len]
        skipped = len(texts) - len(seqs)
        if len(seqs) < cfg.min_texts:
            raise ValueError(
                f"only {len(seqs)} texts are within max_len={cfg.max_len} tokens; need at least {cfg.min_texts}"
            )
        t_start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _Net(len(vocab), cfg)
            gen = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            steps_per_epoch = math.ceil(len(seqs) / batch_size)
            total = epochs * steps_per_epoch
            step = 0
            history: list[EpochStats] = []
            net.train()
            for epoch in range(epochs):
                t0 = time.perf_counter()
                order = torch.randperm(len(seqs), generator=gen).tolist()
                s_recon = s_kl = 0.0
                n_tok = 0
                beta = 0.0
                for b in range(steps_per_epoch):
                    batch = [seqs[i] for i in order[b * batch_size : (b + 1) * batch_size]]
                    enc, lengths, dec_in, target = _batch(batch)
                    beta = _kl_weight(step, total, cfg)
                    mu, logvar = net.encode(enc, lengths)
                    eps = torch.randn(mu.shape, generator=gen)
                    z = mu + eps * torch.exp(0.5 * logvar)
                    if cfg.word_dropout > 0:
                        drop = torch.rand(dec_in.shape, generator=gen) < cfg.word_dropout
                        drop &= (dec_in != PAD_ID) & (dec_in != BOS_ID)
                        dec_in = dec_in.masked_fill(drop, UNK_ID)
                    logits = net.decode_logits(dec_in, z)
                    ce = F.cross_entropy(
                        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=PAD_ID, reduction="sum"
                    )
                    kl = _kl(mu, logvar).sum()
                    n = len(batch)
                    loss = (ce + beta * kl) / n
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    opt.step()
                    step += 1
                    s_recon += ce.item()
                    s_kl += kl.item()
                    n_tok += int((target != PAD_ID).sum())
                history.append(
                    EpochStats(
                        epoch + 1,
                        s_recon / len(seqs),
                        s_recon / n_tok,
                        s_kl / len(seqs),
                        beta,
                        time.perf_counter() - t0,
                    )
                )
        net.eval()
        self.vocab, self.net, self.texts = vocab, net, texts
        mu = self.encode(texts)
        active = int((mu.var(dim=0, unbiased=False) > 0.01).sum()) if len(texts) > 1 else 0
        self.report = TrainReport(
            history, len(seqs), skipped, len(vocab), active, cfg.latent_dim, time.perf_counter() - t_start
        )
        return self.report

    # ---------------------------------------------------------------------------------------------- inference

    def _require(self) -> tuple[Vocabulary, _Net]:
        if self.vocab is None or self.net is None:
            raise RuntimeError("SentenceVAE is not trained: call train(texts) first")
        return self.vocab, self.net

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Posterior means (len(texts), latent_dim); unknown tokens read as <unk>, long texts truncated."""
        vocab, net = self._require()
        if not texts:
            return torch.zeros(0, self.config.latent_dim)
        seqs = [vocab.encode(t)[: self.config.max_len] or [UNK_ID] for t in texts]
        enc, lengths, _, _ = _batch(seqs)
        mu, _ = net.encode(enc, lengths)
        return mu

    def _generate(
        self, z: torch.Tensor, max_len: int | None, temperature: float, seed: int
    ) -> list[tuple[list[int], bool]]:
        _, net = self._require()
        gen = torch.Generator().manual_seed(seed)
        return net.generate(z, max_len or self.config.max_len, temperature, gen)

    def decode(self, z: torch.Tensor, max_len: int | None = None, temperature: float = 0.0, seed: int = 0) -> list[str]:
        """Text for each row of z (or a single vector): greedy when temperature is 0, else sampled."""
        vocab, _ = self._require()
        if z.dim() == 1:
            z = z.unsqueeze(0)
        return [vocab.decode(ids) for ids, _ in self._generate(z.float(), max_len, temperature, seed)]

    def reconstruct(self, texts: Sequence[str]) -> list[str]:
        """Greedy decoding of each text's posterior mean."""
        return self.decode(self.encode(texts))

    def sample_near(self, text: str, n: int, sigma: float = 0.5, temperature: float = 0.0, seed: int = 0) -> list[str]:
        """n decodings of the text's posterior mean plus N(0, sigma^2 I) noise."""
        mu = self.encode([text])
        gen = torch.Generator().manual_seed(seed)
        z = mu + sigma * torch.randn((n, mu.size(1)), generator=gen)
        return self.decode(z, temperature=temperature, seed=seed)

    def interpolate(self, text_a: str, text_b: str, steps: int = 5) -> list[str]:
        """Greedy decodings along the line from a's posterior mean to b's (the paper's homotopy), endpoints
        included: steps >= 2 points."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        mu = self.encode([text_a, text_b])
        t = torch.linspace(0, 1, steps).unsqueeze(1)
        return self.decode((1 - t) * mu[0] + t * mu[1])

    # ---------------------------------------------------------------------------------------------- proposing

    def propose(
        self, n: int, texts: Sequence[str] | None = None, config: ProposeConfig | None = None, seed: int = 0
    ) -> ProposeReport:
        """Up to n new instructions near one of texts (default: the training texts) or between two, each
        well-formed and with ROUGE-L F <= threshold against the training texts, texts and accepted proposals.
        Stops after n * max_candidates_per_accept candidates."""
        vocab, _ = self._require()
        if self.report is None:
            raise RuntimeError("SentenceVAE is not trained: call train(texts) first")
        pc = config or ProposeConfig()
        parents = list(dict.fromkeys(texts)) if texts is not None else list(self.texts)
        if not parents:
            raise ValueError("propose needs at least one parent text")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        pool_texts = list(dict.fromkeys(list(self.texts) + parents))
        index = NoveltyIndex(pc.threshold, pc.novelty_tokenizer, pool_texts)
        seen = {normalize(t) for t in pool_texts}
        produced: set[str] = set()
        mus = self.encode(parents)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        rejected = dict.fromkeys(REJECT_REASONS, 0)
        accepted: list[Proposal] = []
        proposed = 0
        budget = n * pc.max_candidates_per_accept
        round_no = 0
        while len(accepted) < n and proposed < budget:
            size = min(pc.batch_size, budget - proposed)
            near = rng.random(size) < pc.near_fraction if len(parents) > 1 else np.ones(size, dtype=bool)
            a = rng.integers(len(parents), size=size)
            b = (a + rng.integers(1, max(2, len(parents)), size=size)) % len(parents)  # b != a
            alpha = rng.uniform(pc.alpha_low, 1 - pc.alpha_low, size=size)
            noise = torch.randn((size, mus.size(1)), generator=gen)
            at = torch.from_numpy(alpha).float().unsqueeze(1)
            z_near = mus[a] + pc.sigma * noise
            z_between = (1 - at) * mus[a] + at * mus[b]
            z = torch.where(torch.from_numpy(near).unsqueeze(1), z_near, z_between)
            outs = self._generate(z, self.config.max_len, pc.temperature, seed + round_no)
            round_no += 1
            for i, (ids, ended) in enumerate(outs):
                if len(accepted) >= n:
                    break
                proposed += 1
                toks = vocab.tokens(ids)
                text = detokenize([t for t in toks if t not in (PAD, BOS, EOS)])
                reason = _malformed(toks, ended, pc)
                key = normalize(text)
                if reason is None and key in seen:
                    reason = "copy"
                if reason is None and key in produced:
                    reason = "duplicate"
                novelty = None
                if reason is None:
                    novelty = index.check_and_add(text)
                    if not novelty.novel:
                        reason = "not_novel"
                if reason is not None:
                    rejected[reason] += 1
                    continue
                produced.add(key)
                scores = index.scores(text)[:-1]  # exhaustive, for the report; the last entry is text itself
                j = int(scores.argmax()) if len(scores) else -1
                best, nearest = (float(scores[j]), index.texts[j]) if j >= 0 else (0.0, "")
                if near[i]:
                    accepted.append(Proposal(text, "near", (parents[a[i]],), None, best, nearest))
                else:
                    accepted.append(
                        Proposal(text, "between", (parents[a[i]], parents[b[i]]), float(alpha[i]), best, nearest)
                    )
        r = self.report
        return ProposeReport(accepted, proposed, rejected, r.final_recon, r.final_kl, r.active_units)


def _malformed(toks: list[str], ended: bool, pc: ProposeConfig) -> str | None:
    """The first reason a decoded token sequence is not a usable instruction, or None."""
    if not ended:
        return "no_eos"
    if len(toks) < pc.min_tokens:
        return "too_short"
    if len(toks) > pc.max_tokens:
        return "too_long"
    if UNK in toks:
        return "unk"
    bigrams = list(zip(toks, toks[1:]))
    if bigrams and len(set(bigrams)) / len(bigrams) < pc.min_distinct2:
        return "repetitive"
    if toks[-1] in _BAD_LAST or not _balanced(toks):
        return "bad_ending"
    return None


def _balanced(toks: list[str]) -> bool:
    """Brackets nest and straight double quotes pair up."""
    pairs = {")": "(", "]": "[", "}": "{", "）": "（", "】": "【", "》": "《", "」": "「", "』": "『", "”": "“"}
    stack: list[str] = []
    for t in toks:
        if t in pairs.values():
            stack.append(t)
        elif t in pairs:
            if not stack or stack.pop() != pairs[t]:
                return False
    return not stack and toks.count('"') % 2 == 0


def _batch(seqs: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder input (ids, padded), lengths, decoder input (<bos> ids) and target (ids <eos>), padded."""
    b, m = len(seqs), max(len(s) for s in seqs)
    enc = torch.full((b, m), PAD_ID, dtype=torch.long)
    dec = torch.full((b, m + 1), PAD_ID, dtype=torch.long)
    tgt = torch.full((b, m + 1), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        t = torch.tensor(s, dtype=torch.long)
        enc[i, : len(s)] = t
        dec[i, 0] = BOS_ID
        dec[i, 1 : len(s) + 1] = t
        tgt[i, : len(s)] = t
        tgt[i, len(s)] = EOS_ID
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return enc, lengths, dec, tgt


def propose(
    texts: Sequence[str],
    n: int,
    vae_config: VAEConfig | None = None,
    propose_config: ProposeConfig | None = None,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[ProposeReport, TrainReport]:
    """Train a SentenceVAE on texts and propose up to n novel, well-formed instructions near and between them."""
    vae = SentenceVAE(vae_config)
    train_report = vae.train(texts, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return vae.propose(n, config=propose_config, seed=seed), train_report


__all__ = [
    "EpochStats",
    "ProposeConfig",
    "ProposeReport",
    "Proposal",
    "SentenceVAE",
    "TrainReport",
    "VAEConfig",
    "Vocabulary",
    "propose",
]
