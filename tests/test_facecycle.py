from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pcfrl_bench.errors import ConfigError
from pcfrl_bench.models.facecycle import ChannelAttention, FaceCycleBackbone, spatial_size
from pcfrl_bench.models.pcl_parts import PCLNetwork, PDDDecoder, ProjectionHead, Subnet, count_parameters


@pytest.fixture(scope="module")
def pcl_full() -> PCLNetwork:
    return PCLNetwork(width=1.0, image_size=64)


def test_official_parameter_counts(pcl_full: PCLNetwork) -> None:
    # the official code's layer shapes (docs/methods.md):
    # trunk 1,879,424, subnet 295,168, head 5,246,464, decoder 4,300,035
    assert count_parameters(pcl_full.backbone) == 1_879_424
    assert count_parameters(pcl_full.face_subnet) == 295_168
    assert count_parameters(pcl_full.pose_subnet) == 295_168
    assert count_parameters(*pcl_full.encoder_modules()) == 2_469_760
    assert count_parameters(pcl_full.face_head) == 5_246_464
    assert count_parameters(pcl_full.decoder) == 4_300_035
    assert count_parameters(pcl_full) == 17_262_723


def test_no_batchnorm_in_encoder(pcl_full: PCLNetwork) -> None:
    for module in pcl_full.encoder_modules():
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


@pytest.mark.parametrize(("size", "dim"), [(64, 2048), (100, 6272), (112, 6272)])
def test_feature_shapes(size: int, dim: int) -> None:
    net = FaceCycleBackbone(width=0.25)  # 32 output channels
    x = torch.rand(2, 3, size, size)
    side = spatial_size(size)
    assert net.forward_map(x).shape == (2, 32, side, side)
    assert net(x).shape == (2, 32 * side * side)
    assert FaceCycleBackbone(1.0).feature_dim(size) == dim


def test_feature_dim_arithmetic() -> None:
    # official table: 128 -> 8192, 224 -> 25088, 256 -> 32768, 450 -> 107648; (H, W) pairs too
    net = FaceCycleBackbone(1.0)
    assert [net.feature_dim(s) for s in (128, 224, 256, 450)] == [8192, 25088, 32768, 107648]
    assert net.feature_dim((64, 100)) == 128 * 4 * 7
    small = FaceCycleBackbone(0.25)
    assert small(torch.rand(1, 3, 64, 100)).shape == (1, small.feature_dim((64, 100)))


def test_channel_attention_matches_hand_computation() -> None:
    torch.manual_seed(0)
    att = ChannelAttention(3)
    x = torch.randn(2, 3, 2, 2)
    out = att(x)
    b, c, n = 2, 3, 4
    g = torch.softmax(att.g(x).reshape(b, c, n), dim=1)
    th = torch.softmax(att.theta(x).reshape(b, c, n), dim=2)
    ph = att.phi(x).reshape(b, c, n)
    expected = torch.empty(b, c, n)
    for bi in range(b):
        for ci in range(c):
            for ni in range(n):
                # A[c, n] = sum_c' (sum_m phi[c, m] theta[c', m]) g[c', n]
                expected[bi, ci, ni] = sum(
                    sum(ph[bi, ci, m] * th[bi, cj, m] for m in range(n)) * g[bi, cj, ni] for cj in range(c)
                )
    expected = F.leaky_relu(x + expected.reshape(b, c, 2, 2), 0.1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert count_parameters(att) == 3 * (3 * 3 + 3)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_in_place_activations_and_nhwc_layout_compute_the_same_trunk(batchnorm: bool) -> None:
    """The trunk's LeakyReLUs run in place and its attention on (B, H*W, C) views: same outputs and gradients
    as out-of-place activations, in NCHW and in NHWC (channels_last) memory."""
    torch.manual_seed(0)
    net = FaceCycleBackbone(width=0.25, batchnorm=batchnorm)
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.LeakyReLU))
    plain = copy.deepcopy(net)
    for m in plain.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = False
    nhwc = copy.deepcopy(net).to(memory_format=torch.channels_last)
    x = torch.rand(3, 3, 32, 32)
    outs, grads = [], []
    for model, inp in ((plain, x), (net, x), (nhwc, x.contiguous(memory_format=torch.channels_last))):
        out = model(inp)
        out.pow(2).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad for p in model.parameters()])
    scale = max(float(g.abs().max()) for g in grads[0])  # some gradients are rounding noise (softmax shifts)
    for out, grad in zip(outs[1:], grads[1:]):
        assert torch.allclose(out, outs[0], rtol=1e-4, atol=1e-5 * float(outs[0].abs().max()))
        for g, ref in zip(grad, grads[0]):
            assert torch.allclose(g, ref, rtol=1e-3, atol=1e-5 * scale)


def test_projection_head_and_subnet_shapes() -> None:
    head = ProjectionHead(32, hidden_dim=16, out_dim=8)
    assert head(torch.randn(4, 32)).shape == (4, 8)
    sub = Subnet(8)
    assert sub(torch.randn(2, 8, 4, 4)).shape == (2, 128)


def test_decoder_output_and_input_normalisation() -> None:
    torch.manual_seed(0)
    dec = PDDDecoder(in_dim=24, width=0.125).eval()
    f, p = torch.randn(3, 24), torch.randn(3, 24)
    out = dec(f, p)
    assert out.shape == (3, 3, 64, 64)
    assert out.min() >= 0 and out.max() <= 1
    # the input is L2-normalise(f + p): scaling f and p together changes nothing
    assert torch.allclose(dec(5 * f, 5 * p), out, atol=1e-6)
    assert torch.allclose(out, dec.decode(F.normalize(f + p, dim=1)))
    tanh = PDDDecoder(in_dim=24, width=0.125, out_activation="tanh").eval()
    assert tanh(f, p).min() < 0
    assert PDDDecoder(in_dim=24, out_size=32, width=0.125).eval()(f, p).shape == (3, 3, 32, 32)


def test_decoder_for_sides_that_are_not_powers_of_two() -> None:
    """96 px (STL-10) = 3 * 2**5: a 3x3 start map, five x2 stages; powers of two keep the official 1x1 start
    (the 64 px count above is unchanged)."""
    torch.manual_seed(0)
    dec = PDDDecoder(in_dim=24, out_size=96, width=0.125).eval()
    assert dec(torch.randn(2, 24), torch.randn(2, 24)).shape == (2, 3, 96, 96)
    chans = [64, 32, 32, 32, 16, 3]  # 512, 256, 256 (repeated), 128 at width 0.125, then RGB
    convs = sum(cin * cout * 9 + cout for cin, cout in zip(chans[:-1], chans[1:]))
    batchnorms = sum(2 * c for c in chans[1:-1])
    assert count_parameters(dec) == (24 * 64 * 9 + 64 * 9) + convs + batchnorms
    assert PDDDecoder(in_dim=24, out_size=16, width=0.125).fc.out_features == 64  # 1x1 start


@pytest.mark.parametrize("kwargs", [{"out_size": 100}, {"out_size": 12}, {"out_size": 4}, {"out_activation": "relu"}])
def test_decoder_bad_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        PDDDecoder(in_dim=8, **kwargs)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = PCLNetwork(width=0.25, image_size=64, head_hidden=32, head_out=16)
    x = torch.rand(4, 3, 64, 64)
    s, f, p = net(x)
    assert s.shape == f.shape == p.shape == (4, net.feature_dim)
    loss = net.face_head(f).pow(2).mean() + net.pose_head(p).pow(2).mean()
    loss = loss + (net.decoder(f, p) - x).abs().mean() + s.mean()
    loss.backward()
    missing = [
        n for n, prm in net.named_parameters() if prm.grad is None or not torch.isfinite(prm.grad).all()
    ]
    assert missing == []
    assert all(prm.grad.abs().sum() > 0 for prm in net.backbone.parameters())
