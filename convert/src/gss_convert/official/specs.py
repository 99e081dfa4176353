"""What the official GSS-FF models were trained with, per dataset and backbone (fudan-zvg/GSS configs).

Values copied from the GSS repository (commit b9909a4): the maskige colour lists are each config's
`decode_head.palette` (class colours, then the ignore colour last), the input normalisation is
`img_norm_cfg`, and the backbone / head hyper-parameters come from `configs/gss/_base_/models/gss-ff_*.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.datasets import CITYSCAPES_CLASSES

# mmseg `img_norm_cfg` of every GSS config (RGB, 0..255 units; the runtime normalises with these).
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)

VOCAB_SIZE = 8192  # DALL-E dVAE codebook; the head's `vocab_size`
TOKEN_STRIDE = 4   # the head fuses all levels at the stride-4 map (`indice_channel_index=1` after `in_index`)
DVAE_UPSAMPLE = 8  # the dVAE decoder's three 2x upsamples


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    class_names: tuple[str, ...]
    display_colors: tuple[tuple[int, int, int], ...]  # what `gss segment --overlay` paints (mmseg's PALETTE)
    maskige_palette: tuple[tuple[int, int, int], ...]  # X: class id -> RGB the dVAE encodes (GSS's palette)
    ignore_color: tuple[int, int, int]                 # the palette's last entry (`encode_to_segmap` maps 255 to it)
    # Default export size, H x W: Cityscapes frames' 1:2 aspect at about the 768x768 training crop's pixel
    # count (inside the training scale range, 0.5-2 x 1024x2048), ADE20K its 512x512 crop.
    input_size: tuple[int, int]
    configs: dict[str, str]                            # arch -> the GSS config of the released model

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    head_in_channels: tuple[int, ...]  # backbone levels after `in_index` reordering
    head_swin_depth: int               # `swin_depth` of the head's SwinBlockSequence
    description: str


HEAD_IN_INDEX = (1, 0, 2, 3)  # both configs: stride-8 level first, the stride-4 level second
HEAD_CHANNELS = 384           # `channels`
HEAD_SEG_CHANNELS = 512       # `indice_seg_channel`: the fused map and the head's Swin blocks
HEAD_CLS_CHANNELS = 2048      # `indice_cls_channel`: conv_before_seg, then the 8192-way conv_seg
HEAD_SWIN_HEADS = 16          # `swin_num_head` (head default)
HEAD_SWIN_WINDOW = 7          # `swin_window_size` (head default)

ARCHS: dict[str, ArchSpec] = {
    # gss-ff_r101.py: ResNetV1c-101, strides (1, 2, 1, 1), dilations (1, 1, 2, 4), contract_dilation
    "r101": ArchSpec("r101", (512, 256, 1024, 2048), 6, "ResNetV1c-101 (dilated, output stride 8)"),
    # gss-ff_swin-l.py: Swin-L, embed 192, depths (2, 2, 18, 2), heads (6, 12, 24, 48), window 12
    "swin-l": ArchSpec("swin-l", (384, 192, 768, 1536), 2, "Swin-L (window 12, ImageNet-22k pre-training)"),
}

# gss-ff_r101.py / gss-ff_swin-l_768x768_80k_cityscapes.py `decode_head.palette` without its last entry,
# the ignore colour (0, 0, 0): the Cityscapes display colours. Written out rather than taken from
# CITYSCAPES_CLASSES so that a change of display colours cannot change what the dVAE decodes.
_CITYSCAPES_MASKIGE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

_ADE_NAMES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass',
    'cabinet', 'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain', 'chair',
    'car', 'water', 'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair',
    'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub', 'railing', 'cushion', 'base', 'box',
    'column', 'signboard', 'chest of drawers', 'counter', 'sand', 'sink', 'skyscraper', 'fireplace',
    'refrigerator', 'grandstand', 'path', 'stairs', 'runway', 'case', 'pool table', 'pillow',
    'screen door', 'stairway', 'river', 'bridge', 'bookcase', 'blind', 'coffee table', 'toilet',
    'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm', 'kitchen island', 'computer',
    'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel', 'bus', 'towel', 'light', 'truck', 'tower',
    'chandelier', 'awning', 'streetlight', 'booth', 'television receiver', 'airplane', 'dirt track',
    'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle', 'buffet', 'poster',
    'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer', 'plaything',
    'swimming pool', 'stool', 'barrel', 'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle',
    'oven', 'ball', 'food', 'step', 'tank', 'trade name', 'microwave', 'pot', 'animal', 'bicycle',
    'lake', 'dishwasher', 'screen', 'blanket', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light',
    'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate', 'monitor', 'bulletin board', 'shower',
    'radiator', 'glass', 'clock', 'flag',
)

# mmseg ADE20KDataset.PALETTE: display colours only.
_ADE_DISPLAY = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)

# gss-ff_swin-l.py `decode_head.palette`: 150 class colours then the ignore colour (215, 216, 196).
_ADE_MASKIGE = (
    (222, 222, 145), (18, 30, 7), (8, 23, 47), (30, 6, 96), (1, 13, 164), (12, 28, 191),
    (25, 52, 32), (29, 48, 52), (15, 51, 95), (25, 56, 167), (25, 42, 210), (27, 81, 31),
    (9, 88, 54), (27, 92, 113), (11, 99, 151), (26, 110, 183), (24, 130, 26), (4, 122, 75),
    (3, 132, 98), (26, 147, 167), (17, 132, 197), (5, 169, 28), (19, 184, 67), (0, 190, 122),
    (12, 167, 147), (6, 161, 196), (2, 205, 3), (5, 220, 61), (23, 225, 107), (7, 217, 157),
    (25, 208, 191), (74, 10, 8), (69, 30, 69), (56, 4, 98), (61, 29, 164), (60, 10, 194),
    (60, 52, 19), (74, 69, 52), (65, 68, 116), (81, 41, 161), (70, 60, 197), (66, 81, 14),
    (55, 107, 61), (76, 110, 108), (74, 104, 162), (72, 94, 197), (60, 133, 16), (69, 128, 67),
    (59, 148, 104), (65, 133, 154), (68, 128, 183), (79, 181, 11), (76, 170, 56), (71, 175, 103),
    (53, 162, 137), (53, 182, 183), (51, 229, 26), (51, 202, 51), (69, 213, 122), (63, 213, 161),
    (71, 203, 197), (120, 11, 31), (124, 3, 68), (131, 2, 98), (113, 1, 162), (102, 13, 209),
    (109, 50, 30), (126, 41, 47), (107, 46, 118), (112, 49, 147), (109, 41, 189), (103, 83, 15),
    (126, 99, 70), (124, 101, 104), (131, 103, 159), (128, 110, 183), (119, 148, 9), (112, 137, 50),
    (123, 127, 116), (107, 124, 167), (102, 148, 203), (124, 180, 15), (116, 168, 65), (104, 182, 102),
    (111, 164, 163), (105, 174, 191), (102, 218, 20), (126, 203, 64), (108, 215, 109), (110, 221, 157),
    (107, 230, 192), (160, 25, 11), (165, 12, 65), (153, 2, 117), (182, 21, 141), (160, 19, 188),
    (176, 58, 19), (175, 58, 56), (170, 69, 93), (176, 42, 146), (157, 44, 211), (157, 105, 2),
    (180, 98, 73), (182, 85, 92), (169, 93, 152), (156, 89, 202), (157, 144, 22), (180, 151, 77),
    (154, 146, 118), (162, 136, 143), (171, 134, 184), (170, 174, 15), (178, 180, 65), (176, 183, 120),
    (175, 169, 147), (181, 165, 197), (156, 227, 3), (167, 218, 61), (160, 216, 119), (164, 251, 141),
    (177, 201, 251), (231, 30, 13), (219, 6, 59), (211, 26, 122), (216, 16, 153), (209, 12, 192),
    (216, 70, 15), (215, 46, 60), (234, 61, 112), (224, 53, 157), (227, 49, 207), (221, 108, 8),
    (220, 93, 73), (230, 111, 113), (218, 89, 143), (231, 90, 195), (227, 144, 22), (208, 137, 49),
    (210, 128, 116), (225, 135, 157), (221, 135, 193), (211, 174, 18), (222, 185, 50), (229, 183, 93),
    (233, 162, 155), (255, 167, 205), (211, 215, 15), (232, 225, 71), (0, 0, 0), (255, 255, 255),
    (215, 216, 196),
)

DATASETS: dict[str, DatasetSpec] = {
    "cityscapes": DatasetSpec(
        "cityscapes", tuple(c.name for c in CITYSCAPES_CLASSES), tuple(c.color for c in CITYSCAPES_CLASSES),
        _CITYSCAPES_MASKIGE,
        (0, 0, 0), (512, 1024),
        {"r101": "configs/gss/cityscapes/gss-ff_r101_768x768_80k_cityscapes.py",
         "swin-l": "configs/gss/cityscapes/gss-ff_swin-l_768x768_80k_cityscapes.py"}),
    "ade20k": DatasetSpec(
        "ade20k", _ADE_NAMES, _ADE_DISPLAY, _ADE_MASKIGE[:-1], _ADE_MASKIGE[-1], (512, 512),
        {"swin-l": "configs/gss/ade20k/gss-ff_swin-l_512x512_160k_ade20k.py"}),
}

__all__ = ["ARCHS", "DATASETS", "ArchSpec", "DatasetSpec", "MEAN", "STD", "VOCAB_SIZE", "TOKEN_STRIDE"]
