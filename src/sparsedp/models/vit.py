"""A small Vision Transformer (Dosovitskiy et al., 2021): patch embedding, pre-norm blocks,
a class token or mean pooling, a linear head.

Attention uses four plain ``nn.Linear`` projections (query, key, value, output) and computes
``softmax(q·kᵀ/√d)·v`` with explicit matrix products, not ``nn.MultiheadAttention`` or a fused
kernel: every weight is a plain tensor a mask multiplies, and the double back-propagation of
GraSP works. No dropout, as in the paper's other models.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

POOLINGS = ("cls", "mean")
TOKEN_INIT_STD = 0.02  # class token and position embeddings (timm's, ViT's reference code)


class Attention(nn.Module):
    """Multi-head self-attention with separate query, key, value and output projections."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        return x.view(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        mixed = (weights @ v).transpose(1, 2).reshape(x.shape)
        return self.out(mixed)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Patches (a ``patch``×``patch`` stride-``patch`` convolution) → + position embeddings
    (and a class token with ``pool = "cls"``) → ``depth`` pre-norm blocks → LayerNorm →
    class token or mean over tokens → linear head.

    With the workloads' sizes (dim 64, depth 4, 4 heads, MLP 128): MNIST (patch 7, 16
    patches) 134,848 conv and linear weights, the prunable ones, plus 1,152 class-token and
    position-embedding values and 3,018 biases and LayerNorm parameters; CIFAR-10 (patch 4,
    64 patches) 134,784 prunable weights.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        *,
        patch: int = 7,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 128,
        pool: str = "cls",
    ) -> None:
        super().__init__()
        for label, value in (("patch", patch), ("dim", dim), ("depth", depth),
                             ("heads", heads), ("mlp_dim", mlp_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"vit: {label} must be a whole number >= 1, got {value!r}")
        if image_size % patch:
            raise ValueError(f"vit: patch {patch} does not divide the image size {image_size}; "
                             "choose a patch size that divides it")
        if dim % heads:
            raise ValueError(f"vit: dim {dim} is not a multiple of heads {heads}; "
                             "choose dim divisible by heads")
        if pool not in POOLINGS:
            raise ValueError(f"vit: pool must be one of {', '.join(POOLINGS)}, got {pool!r}")
        self.pool = pool
        tokens = (image_size // patch) ** 2 + (pool == "cls")
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        with torch.no_grad():  # drawn from the global generator: build_model seeds it
            for token in (self.cls_token, self.pos_embed):
                if token is not None:
                    nn.init.trunc_normal_(token, std=TOKEN_INIT_STD, a=-2 * TOKEN_INIT_STD,
                                          b=2 * TOKEN_INIT_STD)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))
