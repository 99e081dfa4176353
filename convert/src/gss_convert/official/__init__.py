"""Import of the official GSS checkpoints (fudan-zvg/GSS, GSS-FF with R101 or Swin-L) as model packages.

`import_official` is `gss-convert import-official`; the modules rebuild the official networks with
the checkpoints' parameter names: `resnet` (mmseg ResNetV1c), `swin` (mmseg Swin Transformer),
`head` (GenerativeSegHeadFF), `dalle` (the DALL-E dVAE decoder), `checkpoint` (reading and checking
the files), `specs` (per-dataset palettes, classes and normalisation from the GSS configs).
"""

from .checkpoint import CheckpointError
from .importer import cost_gmac, import_official, load_official

__all__ = ["import_official", "load_official", "cost_gmac", "CheckpointError"]
