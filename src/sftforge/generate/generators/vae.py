"""`vae`: sentence-VAE augmentation (Bowman et al. 2016, arXiv 1511.06349): a small recurrent VAE trained on the
instructions at hand (the seeds, and what earlier generators of the run made) proposes instructions near one of
them or between two (`lib/sentence_vae.py`); proposals that are well-formed and novel (ROUGE-L) go to the LLM for an
answer. Reconstruction loss, KL, active units and the acceptance rate go to the manifest, so a user sees whether it
helps on their data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from sftforge.config import GeneratorConfig
from sftforge.errors import SourceError
from sftforge.generate.base import Ask, Wave, WorkItem, lineage_of, register
from sftforge.generate.records import INSTRUCTION_TASK, AnswerStep, DriverGenerator, InstructionRecords
from sftforge.sample import SourceRef


class VAEAugmentConfig(GeneratorConfig):
    """A sentence VAE (Bowman et al. 2016) trained on the instructions at hand proposes new ones; the LLM answers."""

    name: Literal["vae"] = "vae"
    epochs: int = Field(60, ge=1, le=1000, description="VAE training epochs.")
    latent_dim: int = Field(32, ge=2, le=512)
    word_dropout: float = Field(
        0.3, ge=0, lt=1, description="Decoder input words replaced by <unk> (keeps z informative)."
    )
    sigma: float = Field(0.5, ge=0, description='Noise around an instruction\'s posterior mean for "near" proposals.')
    near_fraction: float = Field(
        0.5, ge=0, le=1, description="Share of proposals near one instruction; the rest between two."
    )
    rouge_threshold: float = Field(
        0.7, gt=0, le=1, description="Proposals this similar to a training instruction are rejected."
    )


class VAEAugmentDriver:
    """Trains the VAE, proposes instructions, and has the LLM answer them in waves."""

    name = "vae"

    def __init__(
        self,
        cfg: VAEAugmentConfig,
        lang: str,
        records: InstructionRecords,
        max_answer_chars: int,
        texts: dict[str, SourceRef],
    ) -> None:
        """`texts`: the instructions at hand, text -> where it came from (a seed task or a record), in a fixed
        order: what the VAE trains on."""
        self.cfg = cfg
        self.texts = texts
        self.records = records
        self.answer = AnswerStep("vae", lang, max_answer_chars, records.system_prompt)
        self.figures: dict = {}

    def run(self, ask: Ask, count: int, seed: int, batch: int = 16) -> Iterator[Wave]:
        import torch

        from sftforge.lib.sentence_vae import ProposeConfig, SentenceVAE, VAEConfig

        cfg, texts = self.cfg, self.texts
        if len(texts) < VAEConfig.min_texts:
            raise SourceError(
                f"generator vae trains on the instructions at hand and needs at least {VAEConfig.min_texts}; "
                f"there are {len(texts)}: add seed tasks to sources.seeds or list vae after other generators"
            )
        vae = SentenceVAE(VAEConfig(latent_dim=cfg.latent_dim, word_dropout=cfg.word_dropout))
        train = vae.train(list(texts), epochs=cfg.epochs, seed=seed)
        pc = ProposeConfig(
            near_fraction=cfg.near_fraction, sigma=cfg.sigma, threshold=cfg.rouge_threshold, novelty_tokenizer="rouge"
        )
        report = vae.propose(math.ceil(count * 1.25), config=pc, seed=seed)
        self.figures = {
            "trained_on": train.n_texts,
            "vocab": train.vocab_size,
            "epochs": len(train.epochs),
            "reconstruction_loss": round(train.final_recon, 3),
            "kl": round(train.final_kl, 3),
            "active_units": f"{train.active_units}/{train.latent_dim}",
            "train_seconds": round(train.seconds, 1),
            "torch_threads": torch.get_num_threads(),  # training repeats exactly for the same seed and thread count
            "proposed": report.proposed,
            "accepted": report.n_accepted,
            "acceptance_rate": round(report.acceptance_rate, 3),
            "rejected": {k: v for k, v in report.rejected.items() if v},
            "curve": [
                {"epoch": e.epoch, "recon": round(e.recon, 3), "kl": round(e.kl, 3), "beta": round(e.beta, 3)}
                for e in train.epochs
            ],
        }
        made = 0
        proposals = report.accepted
        start = 0
        while start < len(proposals):
            chunk = proposals[start : start + min(batch, count - made)]
            wave = Wave([f"vae:{start}"])
            items = [WorkItem(f"vae:{start + i}", p.text) for i, p in enumerate(chunk)]
            for p, a in zip(chunk, ask(self.answer, items)):
                source = [texts[t] for t in p.parents if t in texts]
                parents = [ref.id for ref in source]
                turns = [("user", p.text), ("assistant", a.value if a.ok else a.completion.text)]
                if not a.ok:
                    wave.rejected.append(self.records.rejected(turns, source, a.error or "", parents=parents))
                    continue
                lineage = lineage_of(a, self.answer, self.records.model_id, parents=parents)
                lineage.template = f"vae:{p.method}"
                wave.records.append(self.records.record(turns, source, lineage))
                made += 1
            start += len(chunk)
            yield wave
            if made >= count:
                return


@register
class VAEAugment(DriverGenerator):
    """A sentence VAE (Bowman et al. 2016) trained on the instructions at hand proposes new ones; the LLM answers."""

    name = "vae"
    Config = VAEAugmentConfig
    config: VAEAugmentConfig
    tasks = {"instruction": INSTRUCTION_TASK}
    reads_at_hand = True
    requires = ("seeds",)

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        if "proposed" not in figures:
            return ""
        return (
            f"VAE reconstruction {figures['reconstruction_loss']} nats, KL {figures['kl']}, "
            f"{figures['active_units']} active units; {figures['accepted']} of {figures['proposed']} proposals "
            f"accepted ({figures['acceptance_rate']:.0%})"
        )

    def driver(self, records: InstructionRecords) -> VAEAugmentDriver:
        task = self.job.task
        # the instructions at hand when the VAE starts: the seeds and what the generators before it made
        return VAEAugmentDriver(
            self.config, task.language, records, task.constraints.max_answer_chars, dict(self.job.at_hand)
        )
