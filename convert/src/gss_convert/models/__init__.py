"""The networks of GSS-edge: the maskige VQ-VAE (posterior), the token prior and the discriminative baseline."""

from .prior import PixelBaseline, Prior, PriorConfig
from .vqvae import VQVAE, VQVAEConfig

__all__ = ["VQVAE", "VQVAEConfig", "Prior", "PriorConfig", "PixelBaseline"]
