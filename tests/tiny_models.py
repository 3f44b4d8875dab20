"""Tiny randomly initialised models of the real architectures, saved the way real checkpoints are.

Each builder saves with ``save_pretrained`` (transformers) or timm's ``save_for_hf`` into a folder, so
tests load them back through the real loader (``NAME=FOLDER``).
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4)
PATCH = 4
SIZE = 32  # 8 x 8 grid


def _save_hf(model, folder: Path, processor=None) -> Path:
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    return folder


def dinov2_registers(folder: Path, seed: int = 0, processor=None) -> Path:
    """Dinov2WithRegistersModel: CLS + 2 registers + patches."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(seed)
    config = Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, mlp_ratio=2,
                                       patch_size=PATCH, image_size=SIZE, num_register_tokens=2)
    return _save_hf(Dinov2WithRegistersModel(config), folder, processor)


def dinov2(folder: Path, seed: int = 0) -> Path:
    """Dinov2Model without registers."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, mlp_ratio=2,
                          patch_size=PATCH, image_size=SIZE)
    return _save_hf(Dinov2Model(config), folder)


def dinov3(folder: Path, seed: int = 0) -> Path:
    """DINOv3ViTModel: CLS + 2 registers, RoPE."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(seed)
    config = DINOv3ViTConfig(**TINY, patch_size=PATCH, image_size=SIZE, num_register_tokens=2)
    return _save_hf(DINOv3ViTModel(config), folder)


def mae(folder: Path, seed: int = 0) -> Path:
    """ViTMAEForPreTraining (the Hub layout of facebook/vit-mae-base), default mask ratio 0.75."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    torch.manual_seed(seed)
    config = ViTMAEConfig(**TINY, patch_size=PATCH, image_size=SIZE, decoder_hidden_size=16,
                          decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=32)
    return _save_hf(ViTMAEForPreTraining(config), folder)


def clip(folder: Path, seed: int = 0) -> Path:
    """A whole CLIPModel (text + vision) as on the Hub; the loader takes the vision tower."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(**TINY, vocab_size=99, max_position_embeddings=16),
        vision_config=dict(**TINY, patch_size=PATCH, image_size=SIZE), projection_dim=16,
    )
    return _save_hf(CLIPModel(config), folder)


def siglip(folder: Path, seed: int = 0) -> Path:
    """A whole SiglipModel (no CLS token, MAP head)."""
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config=dict(**TINY, vocab_size=99, max_position_embeddings=16),
        vision_config=dict(**TINY, patch_size=PATCH, image_size=SIZE),
    )
    return _save_hf(SiglipModel(config), folder)


def siglip2_naflex(folder: Path, seed: int = 0) -> Path:
    """A whole Siglip2Model (NaFlex: patchified input of any grid)."""
    from transformers import Siglip2Config, Siglip2Model

    torch.manual_seed(seed)
    config = Siglip2Config(
        text_config=dict(**TINY, vocab_size=99, max_position_embeddings=16),
        vision_config=dict(**TINY, patch_size=PATCH, num_patches=64),
    )
    return _save_hf(Siglip2Model(config), folder)


def vit(folder: Path, seed: int = 0) -> Path:
    """A plain transformers ViTModel (e.g. the architecture of facebook/dino-vitb16)."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(**TINY, patch_size=PATCH, image_size=SIZE)
    return _save_hf(ViTModel(config, add_pooling_layer=False), folder)


def timm_vit_registers(folder: Path, seed: int = 0) -> Path:
    """A timm VisionTransformer with CLS + 2 register tokens, saved with save_for_hf."""
    import timm
    from timm.models import save_for_hf

    args = dict(img_size=SIZE, patch_size=PATCH, embed_dim=32, depth=3, num_heads=4, reg_tokens=2,
                num_classes=0, no_embed_class=True)
    torch.manual_seed(seed)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **args)
    save_for_hf(model, str(folder), model_args=args, safe_serialization=True)
    return folder


def _save_timm(architecture: str, folder: Path, seed: int, **args) -> Path:
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False, **args)
    save_for_hf(model, str(folder), model_args=args, safe_serialization=True)
    return folder


def timm_vit_parallel_scaling(folder: Path, seed: int = 0) -> Path:
    """timm vit_pwee: ParallelScalingBlocks (q, k, v fused with the MLP), 1 register, no CLS."""
    return _save_timm("vit_pwee_patch16_reg1_gap_256", folder, seed, img_size=SIZE, patch_size=PATCH,
                      embed_dim=32, depth=3, num_heads=4, num_classes=0)


def timm_vit_parallel_things(folder: Path, seed: int = 0) -> Path:
    """timm vit_small_18x2: ParallelThingsBlocks (two attentions side by side per block), CLS."""
    return _save_timm("vit_small_patch16_18x2_224", folder, seed, img_size=SIZE, patch_size=PATCH,
                      embed_dim=32, depth=3, num_heads=4, num_classes=0)


def timm_resnet(folder: Path, seed: int = 0) -> Path:
    """A ResNet-50 with one bottleneck block per stage, saved with save_for_hf."""
    import timm
    from timm.models import save_for_hf

    args = dict(layers=[1, 1, 1, 1], num_classes=10)
    torch.manual_seed(seed)
    model = timm.create_model("resnet50", pretrained=False, **args)
    save_for_hf(model, str(folder), model_args=args, safe_serialization=True)
    return folder


HF_BUILDERS = {
    "dinov2_registers": dinov2_registers,
    "dinov2": dinov2,
    "dinov3": dinov3,
    "mae": mae,
    "clip": clip,
    "siglip": siglip,
    "siglip2_naflex": siglip2_naflex,
    "vit": vit,
}
TIMM_BUILDERS = {"timm_vit": timm_vit_registers, "timm_resnet": timm_resnet,
                 "timm_vit_parallel_scaling": timm_vit_parallel_scaling,
                 "timm_vit_parallel_things": timm_vit_parallel_things}


def vit_classifier(folder: Path, seed: int = 0, labels: int = 5) -> Path:
    """A transformers ViTForImageClassification (a supervised ViT with a head, as DeiT/ViT on the Hub)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    config = ViTConfig(**TINY, patch_size=PATCH, image_size=SIZE, num_labels=labels,
                       id2label={i: f"thing{i}" for i in range(labels)}, architectures=["ViTForImageClassification"])
    return _save_hf(ViTForImageClassification(config), folder)


def timm_vit_classifier(folder: Path, seed: int = 0) -> Path:
    """A timm VisionTransformer with a 7-class head and one register, saved with save_for_hf."""
    return _save_timm("vit_base_patch16_224", folder, seed, img_size=SIZE, patch_size=PATCH, embed_dim=32, depth=3,
                      num_heads=4, reg_tokens=1, num_classes=7, no_embed_class=True)


def clip_tokenizer(folder: Path):
    """A byte-level CLIP BPE tokenizer without merges (514 tokens), saved into ``folder``."""
    import json

    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


def clip_with_tokenizer(folder: Path, seed: int = 0) -> Path:
    """A whole CLIPModel with its tokenizer files, so prompts can be embedded offline."""
    from transformers import CLIPConfig, CLIPModel

    tokenizer = clip_tokenizer(folder)
    torch.manual_seed(seed)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    config = CLIPConfig(
        text_config=dict(**TINY, vocab_size=len(tokenizer), max_position_embeddings=32, **ids),
        vision_config=dict(**TINY, patch_size=PATCH, image_size=SIZE), projection_dim=16,
    )
    return _save_hf(CLIPModel(config), folder)


def deit_distilled(folder: Path, seed: int = 0, labels: int = 4) -> Path:
    """A transformers DeiTForImageClassificationWithTeacher: CLS + distillation token, two heads."""
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher

    torch.manual_seed(seed)
    config = DeiTConfig(**TINY, patch_size=PATCH, image_size=SIZE, num_labels=labels,
                        architectures=["DeiTForImageClassificationWithTeacher"])
    return _save_hf(DeiTForImageClassificationWithTeacher(config), folder)
