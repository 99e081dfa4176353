"""The networks of GSS-edge: the maskige VQ-VAE (posterior), the token prior and the discriminative baseline."""

from .vqvae import VQVAE, VQVAEConfig
from .prior import Prior, PriorConfig, PixelBaseline

__all__ = ["VQVAE", "VQVAEConfig", "Prior", "PriorConfig", "PixelBaseline"]
