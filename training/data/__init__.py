"""LoRAT training data: sources -> pair sampler -> transform (+ augmentation) -> deterministic stream.

=================== ====================================================================
``sources.py``      ``--dataset`` specs, random-access and streaming (pooled) sources
``pair_sampler.py`` weighted source mix, official template/search frame rule
``transform.py``    SiamFC crops, labels, template mask, normalisation
``augmentation.py`` flip, colour jitter, DeiT-III 3-augment
``loader.py``       ``TrainingPairDataset`` (seeded per global sample index), collate, DataLoader
=================== ====================================================================
"""

from .augmentation import AugmentationConfig, PairAugmentation
from .loader import (
    MODEL_INPUTS,
    StreamLayout,
    TrainingPairDataset,
    collate_pairs,
    make_dataloader,
    sample_rng,
)
from .pair_sampler import OFFICIAL_MAX_GAP, PairSampler, SampledPair, SequenceSource, sample_frame_indices
from .sources import (
    TRAIN_SPLITS,
    DatasetSpec,
    ListSource,
    StreamSource,
    SyntheticSource,
    build_source,
    parse_dataset_spec,
)
from .transform import BadSampleError, FramePair, PairTransform, TransformConfig

__all__ = [
    "MODEL_INPUTS",
    "OFFICIAL_MAX_GAP",
    "TRAIN_SPLITS",
    "AugmentationConfig",
    "BadSampleError",
    "DatasetSpec",
    "FramePair",
    "ListSource",
    "PairAugmentation",
    "PairSampler",
    "PairTransform",
    "SampledPair",
    "SequenceSource",
    "StreamLayout",
    "StreamSource",
    "SyntheticSource",
    "TrainingPairDataset",
    "TransformConfig",
    "build_source",
    "collate_pairs",
    "make_dataloader",
    "parse_dataset_spec",
    "sample_frame_indices",
    "sample_rng",
]
