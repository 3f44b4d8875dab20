"""Relevance (Chefer et al. 2021) and ViT Grad-CAM against references computed here from autograd.

The models are tiny random ones built from configs and loaded through the real loader; the references
take the attentions from transformers' own ``output_attentions`` (timm: the softmax seen at ``attn_drop``)
and apply the rule in float64 numpy, on a non-square input (8 x 12 patches).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_attention.errors import UnsupportedError
from ssl_attention.maps import compute_maps
from ssl_attention.models import ModelRequest, load_model
from tests import tiny_models

SIZE = (32, 48)  # 8 x 12 patches of 4 px


def _rule(attns, grads, prefix: int, has_cls: bool) -> np.ndarray:
    """R = I; R += mean_h (G * A)+ @ R per layer; R[0, P] or the mean over patch rows of R[P, P] (float64)."""
    tokens = attns[0].shape[-1]
    maps = []
    for b in range(attns[0].shape[0]):
        r = np.eye(tokens)
        for a, g in zip(attns, grads, strict=True):
            fused = np.clip(g[b].astype(np.float64) * a[b].astype(np.float64), 0, None).mean(axis=0)
            r = r + fused @ r
        maps.append(r[0, prefix:] if has_cls else r[prefix:, prefix:].mean(axis=0))
    return np.stack(maps).reshape(attns[0].shape[0], SIZE[0] // 4, SIZE[1] // 4)


def _pixels(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


def _load(folder, name="m", **kwargs):
    return load_model(ModelRequest(name, str(folder)), weights="pretrained", image_size=SIZE, explain=True, **kwargs)


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    return tiny_models.vit_classifier(tmp_path_factory.mktemp("vitcls"))


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return tiny_models.clip_with_tokenizer(tmp_path_factory.mktemp("clip2"))


def test_vit_classifier_relevance_matches_autograd_rule(vit_folder):
    from transformers import ViTForImageClassification

    model = _load(vit_folder)
    assert "relevance" in model.methods and model.explainer.targets == ("top-1 class",)
    pixels = _pixels()
    got = compute_maps(model, pixels, ("relevance",))
    ref_model = ViTForImageClassification.from_pretrained(vit_folder, attn_implementation="eager").eval()
    out = ref_model(pixel_values=pixels, output_attentions=True, interpolate_pos_encoding=True)
    top1 = out.logits.argmax(dim=1)
    grads = torch.autograd.grad(out.logits.gather(1, top1[:, None]).sum(), out.attentions, retain_graph=True)
    ref = _rule([a.detach().numpy() for a in out.attentions], [g.numpy() for g in grads], 1, True)
    assert got["relevance"].shape == (2, 1, 8, 12) and got["relevance"].dtype == np.float32
    np.testing.assert_allclose(got["relevance"][:, 0], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["relevance_class"][:, 0], top1.numpy())
    assert "relevance" not in compute_maps(model, pixels)  # gradient methods only when asked for by name

    model.explainer.set_class(3)
    chosen = compute_maps(model, pixels, ("relevance",))
    grads = torch.autograd.grad(out.logits[:, 3].sum(), out.attentions)
    ref3 = _rule([a.detach().numpy() for a in out.attentions], [g.numpy() for g in grads], 1, True)
    np.testing.assert_allclose(chosen["relevance"][:, 0], ref3, rtol=1e-5, atol=1e-5)
    assert model.explainer.targets == ("class 3: thing3",)
    with pytest.raises(UnsupportedError, match="outside the head's 5 classes"):
        model.explainer.set_class(5)


def test_vit_gradcam_matches_a_manual_last_layer(vit_folder):
    """Grad-CAM at the last block's norm1: the reference re-runs the last layer and the head from its norm."""
    from transformers import ViTForImageClassification

    model = _load(vit_folder)
    pixels = _pixels(1)
    got = compute_maps(model, pixels, ("gradcam_vit",))
    ref_model = ViTForImageClassification.from_pretrained(vit_folder, attn_implementation="eager").eval()
    with torch.no_grad():
        hidden = ref_model(pixel_values=pixels, output_hidden_states=True, interpolate_pos_encoding=True)
    before = hidden.hidden_states[-2]  # the input of the last layer
    layer = ref_model.vit.layers[-1]
    x = layer.layernorm_before(before).detach().requires_grad_(True)
    attended = layer.attention(x)
    mid = (attended[0] if isinstance(attended, tuple) else attended) + before
    out = layer.mlp(layer.layernorm_after(mid)) + mid
    logits = ref_model.classifier(ref_model.vit.layernorm(out)[:, 0])
    np.testing.assert_allclose(logits.detach().numpy(), hidden.logits.numpy(), rtol=1e-5, atol=1e-5)
    top1 = logits.argmax(dim=1)
    (grad,) = torch.autograd.grad(logits.gather(1, top1[:, None]).sum(), x)
    act, grad = x.detach().numpy()[:, 1:].astype(np.float64), grad.numpy()[:, 1:].astype(np.float64)
    ref = np.maximum((act * grad.mean(axis=1, keepdims=True)).sum(axis=-1), 0).reshape(2, 8, 12)
    assert got["gradcam_vit"].shape == (2, 1, 8, 12)
    np.testing.assert_allclose(got["gradcam_vit"][:, 0], ref, rtol=1e-5, atol=1e-6)
    assert np.abs(ref).max() > 0  # the norm1 gradient of the patches is not zero (the block output's would be)


def test_clip_prompt_relevance_matches_autograd_rule(clip_folder):
    from transformers import AutoTokenizer, CLIPModel

    model = _load(clip_folder)
    prompts = ["a photo of a tower.", "a photo of a window.", "sky"]
    model.explainer.set_prompts(prompts)
    assert model.explainer.targets == tuple(prompts)
    pixels = _pixels(2)
    got = compute_maps(model, pixels, ("relevance",))

    ref_model = CLIPModel.from_pretrained(clip_folder, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(clip_folder)
    ids = tokenizer(prompts, padding="max_length", max_length=32, return_tensors="pt")["input_ids"]
    out = ref_model(input_ids=ids, pixel_values=pixels, output_attentions=True, interpolate_pos_encoding=True)
    attentions = out.vision_model_output.attentions
    assert got["relevance"].shape == (2, 3, 8, 12)
    for t in range(3):
        grads = torch.autograd.grad(out.logits_per_image[:, t].sum(), attentions, retain_graph=True)
        ref = _rule([a.detach().numpy() for a in attentions], [g.numpy() for g in grads], 1, True)
        np.testing.assert_allclose(got["relevance"][:, t], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["relevance_class"], [[0, 1, 2]] * 2)
    again = compute_maps(model, pixels, ("relevance",))
    np.testing.assert_array_equal(again["relevance"], got["relevance"])  # deterministic


def test_timm_classifier_with_register_relevance(tmp_path):
    """A timm ViT with a head and a register: attentions seen at attn_drop, registers dropped at the end."""
    model = _load(tiny_models.timm_vit_classifier(tmp_path / "timm"))
    assert model.num_registers == 1
    pixels = _pixels(3)
    got = compute_maps(model, pixels, ("relevance",))
    module = model.module
    seen = []
    handles = [block.attn.attn_drop.register_forward_hook(lambda _m, _i, o: seen.append(o)) for block in module.blocks]
    logits = module(pixels)
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), seen)
    ref = _rule([a.detach().numpy() for a in seen], [g.numpy() for g in grads], 2, True)
    np.testing.assert_allclose(got["relevance"][:, 0], ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(UnsupportedError, match="target class 7 is outside the head's 7 classes"):
        model.explainer.set_class(7)


def test_distilled_deit_relevance_keeps_both_prefix_tokens_in_the_matrix(tmp_path):
    from transformers import DeiTForImageClassificationWithTeacher

    folder = tiny_models.deit_distilled(tmp_path / "deit")
    model = _load(folder)
    assert model.prefix_tokens == 2 and "relevance" in model.methods
    pixels = _pixels(4)
    got = compute_maps(model, pixels, ("relevance",))
    ref_model = DeiTForImageClassificationWithTeacher.from_pretrained(folder, attn_implementation="eager").eval()
    out = ref_model(pixel_values=pixels, output_attentions=True, interpolate_pos_encoding=True)
    grads = torch.autograd.grad(out.logits.gather(1, out.logits.argmax(1, keepdim=True)).sum(), out.attentions)
    ref = _rule([a.detach().numpy() for a in out.attentions], [g.numpy() for g in grads], 2, True)
    np.testing.assert_allclose(got["relevance"][:, 0], ref, rtol=1e-5, atol=1e-5)


def test_ssl_backbone_refuses_relevance_in_one_line(tmp_path):
    model = _load(tiny_models.dinov2(tmp_path / "dino"))
    assert model.explainer is None and "relevance" not in model.methods
    with pytest.raises(UnsupportedError) as info:
        compute_maps(model, _pixels(), ("relevance",))
    message = str(info.value)
    assert "\n" not in message and "does not support relevance" in message and "no score to explain" in message


def test_without_tokenizer_files_clip_uses_open_clip_bpe_and_siglip_says_why_not(tmp_path, tiny_checkpoints):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(**tiny_models.TINY, vocab_size=49408, max_position_embeddings=16),
                        vision_config=dict(**tiny_models.TINY, patch_size=4, image_size=32), projection_dim=16)
    CLIPModel(config).save_pretrained(tmp_path / "clip49408")  # no tokenizer files beside it
    model = _load(tmp_path / "clip49408")
    model.explainer.set_prompts(["a photo of a cat.", "a photo of a rose window."])
    text = model.explainer.text_features()
    assert text.shape == (2, 16) and not torch.allclose(text[0], text[1])
    from open_clip.tokenizer import SimpleTokenizer

    ids = SimpleTokenizer(context_length=16)(["a photo of a cat."])[0]
    assert ids[0] == 49406 and 49407 in ids.tolist()  # CLIP's start and end tokens

    siglip = _load(tiny_checkpoints["siglip"])
    with pytest.raises(UnsupportedError) as info:
        siglip.explainer.set_prompts(["a photo of a cat."])
    assert "\n" not in str(info.value) and "no tokenizer for its text tower offline" in str(info.value)
