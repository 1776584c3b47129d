"""The flexible material denoiser: periodic graphs, the EGNN backbone, embeddings."""

from .denoiser import Denoiser, ModelConfig
from .graph import Batch, NeighbourCache, minimum_image, wrap

__all__ = ["Batch", "Denoiser", "ModelConfig", "NeighbourCache", "minimum_image", "wrap"]
