"""Inference-only fast path for merged LoRAT models: fewer, larger kernels per forward.

:func:`fuse_for_inference` rewrites a merged (LoRA folded) `LoratForTracking` in place:

* every ``Dinov2Layer`` becomes a :class:`FusedDinov2Layer` with one ``qkv`` projection (q/k/v
  concatenated, as in the official DINOv2 ``Attention``), the layer scales folded into the attention
  output projection and the last FFN projection (``ls * (W x + b) = (ls W) x + ls b``), SwiGLU's
  gate/up projections concatenated, and drop path removed (identity at inference);
* the decoupled input embedding precomputes the constant part: ``search position + search token type``
  and ``template position + background type`` plus the foreground-minus-background difference;
* the two head MLPs share their first layer's matmul (weights concatenated).

The weights stay in their standard Dinov2 layout in every checkpoint: a fused model refuses
``save_pretrained`` (reload the checkpoint to save), and nothing here is trainable. Outputs equal the
unfused model up to floating-point reassociation (tested to 1e-5 in float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.dinov2.modeling_dinov2 import Dinov2Layer, Dinov2MLP, Dinov2SwiGLUFFN


def _concat_linear(layers: list[nn.Linear]) -> nn.Linear:
    """One Linear whose output is the concatenation of ``layers``' outputs (missing biases are zeros)."""
    weight = torch.cat([layer.weight.detach() for layer in layers], dim=0)
    biases = [
        layer.bias.detach() if layer.bias is not None else weight.new_zeros(layer.out_features)
        for layer in layers
    ]
    fused = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(torch.cat(biases), requires_grad=False)
    return fused


def _scaled_linear(layer: nn.Linear, scale: torch.Tensor) -> nn.Linear:
    """``layer`` followed by an elementwise ``* scale`` on its output, as one Linear."""
    scale = scale.detach().to(layer.weight.dtype)
    fused = nn.Linear(layer.in_features, layer.out_features, device=scale.device, dtype=scale.dtype)
    fused.weight = nn.Parameter(layer.weight.detach() * scale[:, None], requires_grad=False)
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(scale)
    fused.bias = nn.Parameter(bias * scale, requires_grad=False)
    return fused


class FusedDinov2Layer(nn.Module):
    """A ``Dinov2Layer`` at inference: fused qkv, layer scales folded, SDPA attention."""

    def __init__(self, layer: Dinov2Layer) -> None:
        super().__init__()
        attention = layer.attention
        self.num_heads = attention.num_attention_heads
        self.head_dim = attention.head_dim
        self.scaling = attention.scaling
        self.norm1, self.norm2 = layer.norm1, layer.norm2
        self.qkv = _concat_linear([attention.q_proj, attention.k_proj, attention.v_proj])
        self.proj = _scaled_linear(attention.o_proj, layer.layer_scale1.lambda1)
        mlp = layer.mlp
        if isinstance(mlp, Dinov2SwiGLUFFN):
            self.swiglu = True
            self.fc1 = _concat_linear([mlp.gate_proj, mlp.up_proj])
            self.fc2 = _scaled_linear(mlp.down_proj, layer.layer_scale2.lambda1)
            self.act = mlp.act_fn
        elif isinstance(mlp, Dinov2MLP):
            self.swiglu = False
            self.fc1 = mlp.fc1
            self.fc2 = _scaled_linear(mlp.fc2, layer.layer_scale2.lambda1)
            self.act = mlp.activation_fn
        else:
            raise TypeError(f"cannot fuse a Dinov2Layer with FFN {type(mlp).__name__}")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, tokens, channels = hidden_states.shape
        qkv = self.qkv(self.norm1(hidden_states)).view(batch, tokens, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(query, key, value, scale=self.scaling)
        hidden_states = hidden_states + self.proj(attn.transpose(1, 2).reshape(batch, tokens, channels))
        ffn = self.fc1(self.norm2(hidden_states))
        if self.swiglu:
            gate, up = ffn.chunk(2, dim=-1)
            ffn = self.act(gate) * up
        else:
            ffn = self.act(ffn)
        return hidden_states + self.fc2(ffn)


class FusedLoratInference(nn.Module):
    """The whole LoRAT forward at inference with precomputed embeddings: ``(z, x, mask) -> (scores, boxes)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if any(".lora_" in name for name, _ in model.named_parameters()):
            raise ValueError("fuse_for_inference needs a merged model: call merge_and_unload() first")
        embeddings, head = model.embeddings, model.head
        self.patch_embeddings = model.backbone.embeddings.patch_embeddings
        self.layers = nn.ModuleList(FusedDinov2Layer(layer) for layer in model.backbone.encoder.layer)
        self.layernorm = model.backbone.layernorm
        with torch.no_grad():
            hidden = embeddings.position_embeddings.shape[-1]
            t, s = embeddings.template_grid, embeddings.search_grid
            pos = embeddings.position_embeddings.detach()
            types = embeddings.token_type_embeddings.weight.detach()
            template_pos = pos.view(1, s, s, hidden)[:, :t, :t, :].reshape(1, t * t, hidden)
            self.register_buffer("template_base", template_pos + types[0], persistent=False)
            self.register_buffer("foreground_delta", types[1] - types[0], persistent=False)
            self.register_buffer("search_base", pos + types[2], persistent=False)
        self.head = head
        self.cls_layers, self.reg_layers = head.cls_mlp.layers, head.reg_mlp.layers
        self.first = _concat_linear([self.cls_layers[0], self.reg_layers[0]])
        self.act = head.cls_mlp.act

    def _mlp_tail(self, layers: nn.ModuleList, hidden: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(layers[1:]):
            hidden = layer(self.act(hidden) if index == 0 else hidden)
            if index != len(layers) - 2:
                hidden = self.act(hidden)
        return hidden

    def forward(
        self, template: torch.Tensor, search: torch.Tensor, template_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``score_map (B, H, W)`` logits, ``pred_boxes (B, H, W, 4)`` and the search tokens."""
        mask = template_mask.flatten(1).unsqueeze(-1).to(template.dtype)
        z = self.patch_embeddings(template) + self.template_base + mask * self.foreground_delta
        x = self.patch_embeddings(search) + self.search_base
        hidden = torch.cat((z, x), dim=1)
        for layer in self.layers:
            hidden = layer(hidden)
        tokens = self.layernorm(hidden[:, z.shape[1] :])
        if len(self.cls_layers) == 1:
            return (*self.head(tokens), tokens)
        cls_hidden, reg_hidden = self.first(tokens).chunk(2, dim=-1)
        batch, grid = tokens.shape[0], self.head.grid
        score_map = self._mlp_tail(self.cls_layers, cls_hidden).float().view(batch, grid, grid)
        ltrb = self._mlp_tail(self.reg_layers, reg_hidden).float().view(batch, grid, grid, 4).sigmoid()
        centers = self.head.cell_centers
        boxes = torch.cat((centers - ltrb[..., :2], centers + ltrb[..., 2:]), dim=-1)
        return score_map, boxes, tokens
