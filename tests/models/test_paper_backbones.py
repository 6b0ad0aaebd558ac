"""The paper's backbones: stems, forward/backward on CPU, parameter counts, transformer weights, and
every dataset x backbone combination of Tables 6-8 composing and building."""

import logging

import pytest
import torch
from helpers import compose
from omegaconf import OmegaConf

from podexp.errors import ConfigError
from podexp.models import build_model
from podexp.pedcc import iterative_pedcc, resolve_method

# reduced-size transformers through the same wrapper (full size is only built, see the counts test)
TINY_VIT = {"name": "vit_b16", "pretrained": False, "model_kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2}}
TINY_SWIN = {
    "name": "swin_b",
    "pretrained": False,
    "model_kwargs": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]},
}


def _model(cfg: dict, stem: str, latent_dim: int = 8):
    return build_model(OmegaConf.create(cfg), in_channels=3, stem=stem, latent_dim=latent_dim)


def _forward_backward(model, size: int) -> torch.Tensor:
    z = model(torch.randn(2, 3, size, size))
    assert z.shape == (2, model.fc1.out_features)
    z.square().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return z


@pytest.mark.parametrize("name", ["densenet121", "mobilenetv2"])
@pytest.mark.parametrize("stem,size,final_map", [("cifar", 32, 4), ("tiny", 64, 4), ("imagenet", 224, 7)])
def test_cnn_stems_set_the_final_map_and_train(name, stem, size, final_map):
    torch.manual_seed(0)
    model = _model({"name": name}, stem)
    features = model.backbone[0]  # the conv body, before pooling
    seen = []
    features.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape[-2:])))
    first_conv = next(m for m in features.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.stride == ((2, 2) if stem == "imagenet" else (1, 1))
    _forward_backward(model, size)
    assert seen == [(final_map, final_map)]
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cfg", [TINY_VIT, TINY_SWIN], ids=["vit", "swin"])
@pytest.mark.parametrize("size", [32, 64, 224])
def test_transformers_resize_to_224_inside_the_wrapper(cfg, size):
    torch.manual_seed(0)
    model = _model(cfg, "cifar")
    seen = []
    model.backbone.net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    _forward_backward(model, size)
    assert seen == [(2, 3, 224, 224)]


# expected sizes (the backbones without FC1), from the architectures' published parameter counts
COUNTS = {
    "resnet50": (23.4e6, 23.6e6),
    "densenet121": (6.9e6, 7.0e6),
    "mobilenetv2": (2.2e6, 2.25e6),
    "vit_b16": (85.5e6, 86.5e6),
    "swin_b": (86.5e6, 88e6),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_full_size_parameter_counts(name, capsys):
    cfg = {"name": name, **({"pretrained": False} if name in ("vit_b16", "swin_b") else {})}
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = _model(cfg, "imagenet", latent_dim=512)
    count = sum(p.numel() for p in model.backbone.parameters())
    low, high = COUNTS[name]
    assert low <= count <= high
    assert (
        model.fc1.in_features
        == {"resnet50": 2048, "densenet121": 1024, "mobilenetv2": 1280, "vit_b16": 768, "swin_b": 1024}[name]
    )
    with capsys.disabled():
        print(f"\n{name}: backbone {count:,} parameters (+ FC1 {model.fc1.in_features}x512+512)")


def test_transformer_weights_from_a_local_checkpoint(tmp_path):
    import timm

    source = timm.create_model("vit_base_patch16_224", pretrained=False, **TINY_VIT["model_kwargs"])
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = _model({**TINY_VIT, "checkpoint": str(path)}, "cifar")
    loaded = model.backbone.net.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("head"):
            assert torch.equal(loaded[key], value), key


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"no such file.*huggingface.co/timm/vit_base_patch16_224.augreg_in21k"):
        _model({**TINY_VIT, "checkpoint": str(tmp_path / "absent.safetensors")}, "cifar")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"hub cache.*Download https://huggingface.co/timm/.*backbone.checkpoint"):
        _model({**TINY_VIT, "pretrained": True}, "cifar")
    wrong = tmp_path / "wrong.pth"
    torch.save({"unrelated.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ConfigError, match=f"from the file {wrong}"):
        _model({**TINY_VIT, "checkpoint": str(wrong)}, "cifar")


def test_pedcc_falls_back_to_the_iterative_generator_when_k_exceeds_d_plus_1(caplog):
    """ViT-B/16 on ImageNet-1000 with d = 768: K = 1000 > d + 1, so ``auto`` picks the charge model."""
    with caplog.at_level(logging.WARNING):
        assert resolve_method(1000, 768, "auto") == "iterative"
    assert "K=1000 classes > d+1=769" in caplog.text
    assert resolve_method(769, 768, "auto") == "simplex"
    centres = iterative_pedcc(1000, 768, max_iterations=2)  # the full-size geometry, few iterations
    assert centres.shape == (1000, 768)
    assert torch.allclose(centres.norm(dim=1), torch.ones(1000, dtype=torch.float64))
    from podexp.losses import build as build_loss

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        loss = build_loss("pod", num_classes=40, latent_dim=16)  # same path through a loss, smaller K > d+1
    assert "iterative" in caplog.text
    cos = loss.pedcc.double() @ loss.pedcc.double().T
    start = torch.randn(40, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    start = start / start.norm(dim=1, keepdim=True)
    off = ~torch.eye(40, dtype=torch.bool)
    assert cos[off].max() < (start @ start.T)[off].max()  # spread out from the random start


# Tables 6-8: (backbone, datasets)
PAPER_COMBOS = [
    (
        "resnet50",
        [
            "cifar10",
            "cifar100",
            "tiny_imagenet",
            "facescrub",
            "imagenet30",
            "imagenet100",
            "imagenet200",
            "imagenet500",
            "imagenet1000",
        ],
    ),
    ("densenet121", ["cifar10", "cifar100", "tiny_imagenet", "facescrub"]),
    ("mobilenetv2", ["cifar10", "cifar100", "tiny_imagenet", "facescrub"]),
    ("vit_b16", ["cifar100", "facescrub", "imagenet100", "imagenet500", "imagenet1000"]),
    ("swin_b", ["cifar100", "facescrub", "imagenet100", "imagenet500", "imagenet1000"]),
]
LATENT = {
    "cifar10": 256,
    "cifar100": 512,
    "tiny_imagenet": 512,
    "facescrub": 512,
    "imagenet30": 256,
    "imagenet100": 512,
    "imagenet200": 512,
    "imagenet500": 1024,
    "imagenet1000": 2048,
}  # Table 3


@pytest.mark.parametrize("backbone,datasets", PAPER_COMBOS, ids=[b for b, _ in PAPER_COMBOS])
def test_every_paper_combination_composes_and_builds(backbone, datasets):
    for dataset in datasets:
        extra = ["backbone.pretrained=false"] if backbone in ("vit_b16", "swin_b") else []
        cfg = compose(f"dataset={dataset}", f"backbone={backbone}", *extra)
        assert cfg.dataset.latent_dim == LATENT[dataset]
        if dataset.startswith("imagenet"):
            assert cfg.dataset.num_classes == int(dataset.removeprefix("imagenet"))
            assert (cfg.dataset.stem, cfg.dataset.image_size, cfg.dataset.batch_size) == ("imagenet", 224, 96)
        with torch.device("meta"):
            model = build_model(
                cfg.backbone, in_channels=cfg.dataset.channels, stem=cfg.dataset.stem, latent_dim=cfg.dataset.latent_dim
            )
            size = cfg.dataset.image_size
            z = model(torch.empty(2, cfg.dataset.channels, size, size))
        assert z.shape == (2, LATENT[dataset]), (backbone, dataset)
