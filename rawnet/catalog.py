"""What the deep models offer, importable without torch: architectures, variants, sinc scales, devices, and the
official training recipes.

The command line builds its choices and quotes its defaults from here, so ``antispoof --help`` never imports torch,
and the model modules take their names from here (:data:`rawnet.rawnet2.VARIANTS`, :data:`rawnet.aasist.VARIANTS`,
:data:`rawnet.sinc.SCALES` are these objects): each list has one source.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Networks the trainer builds and model files describe (``format`` ``"antispoof-<architecture>"``).
ARCHITECTURES = ("rawnet2", "aasist")
#: ``asvspoof2021``: the ASVspoof 2021 challenge baseline; ``icassp2021``: Tak et al., ICASSP 2021; ``asvspoof5``:
#: the ASVspoof 5 organisers' baseline (``asvspoof-challenge/asvspoof5`` ``Baseline-RawNet2``).
RAWNET2_VARIANTS = ("asvspoof2021", "icassp2021", "asvspoof5")
#: AASIST variants as the command line, model files and the weights cache name them → the official config names.
AASIST_VARIANTS = {"aasist": "AASIST", "aasist-l": "AASIST-L"}
#: Band-edge scales of RawNet2's fixed sinc filters (``asvspoof2021`` has only ``mel``).
SINC_SCALES = ("mel", "inverse-mel", "linear")
#: Where the networks run: ``auto`` is CUDA when available, else the CPU.
DEVICES = ("auto", "cpu", "cuda")
#: What the deep scorers read of a file (:mod:`rawnet.windows`): ``none`` the whole file (the default), ``official``
#: the official single window (the first ``nb_samp`` samples, repeat-padded).
CROPS = ("none", "official")


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of a training run.

    Attributes
    ----------
    epochs, batch_size : passes over the data; examples per step (per process under DDP).
    lr, weight_decay, betas, eps : Adam.
    class_weights : weights of the cross-entropy, (spoof, bona fide).
    scheduler : ``"constant"``, or ``"cosine"``: per optimizer step from ``lr`` down to ``lr_min`` over the whole
        run, ``lr_min + (lr - lr_min) (1 + cos(pi step / total_steps)) / 2`` (the official ``cosine_annealing``).
    lr_min : end of the cosine schedule.
    random_crop : training examples are random ``nb_samp`` windows; False takes the first ``nb_samp`` samples.
    drop_last : drop the last incomplete training batch.

    The input length is the model config's ``nb_samp`` (64,600 samples in both official configs).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    class_weights: tuple[float, float] = (0.1, 0.9)
    scheduler: str = "constant"
    lr_min: float = 0.0
    random_crop: bool = True
    drop_last: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if self.scheduler not in ("constant", "cosine"):
            raise ValueError(f"unknown scheduler {self.scheduler!r}; expected 'constant' or 'cosine'")
        if len(self.class_weights) != 2 or min(self.class_weights) < 0:
            raise ValueError(f"class_weights must be two non-negative numbers, got {self.class_weights}")


_RAWNET2_2021 = Recipe(epochs=100, batch_size=32, lr=1e-4, weight_decay=1e-4, random_crop=False)
_AASIST = Recipe(epochs=100, batch_size=24, lr=1e-4, weight_decay=1e-4, scheduler="cosine", lr_min=5e-6)

#: The official recipe of each architecture's variants. RawNet2 ``asvspoof2021`` and ``icassp2021``: the ASVspoof
#: 2021 LA baseline main.py (Adam, constant lr, batch 32, the first 64,600 samples of every training file).
#: ``asvspoof5``: the ASVspoof 5 baseline Main_RawNet2_baseline.py (the same Adam, batch 128, a random 64,000-sample
#: window of every file, ``pad_random``). AASIST and AASIST-L: clovaai/aasist AASIST.conf (Adam amsgrad off, cosine
#: per step to 5e-6, batch 24, random 64,600-sample windows). All: 100 epochs, weighted cross-entropy [0.1 spoof,
#: 0.9 bona fide], shuffled, last incomplete batch dropped.
RECIPES: dict[str, dict[str, Recipe]] = {
    "rawnet2": {
        "asvspoof2021": _RAWNET2_2021,
        "icassp2021": _RAWNET2_2021,
        "asvspoof5": Recipe(epochs=100, batch_size=128, lr=1e-4, weight_decay=1e-4, random_crop=True),
    },
    "aasist": dict.fromkeys(AASIST_VARIANTS, _AASIST),
}


def official_recipe(architecture: str, variant: str) -> Recipe:
    """The recipe the official code trains ``variant`` of ``architecture`` with (:data:`RECIPES`).

    Raises
    ------
    ValueError
        for an unknown architecture or variant.
    """
    if architecture not in RECIPES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")
    recipes = RECIPES[architecture]
    if variant not in recipes:
        raise ValueError(f"unknown {architecture} variant {variant!r}; expected one of {tuple(recipes)}")
    return recipes[variant]
