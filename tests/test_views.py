import torch

from pcfrl_bench.data import views


def test_views_shape_range_and_per_sample_randomness():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16)
    out = views.simclr_view(x.clone(), views.AugmentParams(), size=12)
    assert out.shape == (8, 3, 12, 12) and out.min() >= 0 and out.max() <= 1
    same = x[:1].expand(8, -1, -1, -1)
    v = views.simclr_view(same, views.AugmentParams())
    assert not torch.allclose(v[0], v[1])  # each sample draws its own parameters


def test_affine_resample_identity_and_flip():
    x = torch.rand(2, 3, 8, 8)
    full = torch.tensor([[0.5, 0.5, 1.0, 1.0]]).repeat(2, 1)
    assert torch.allclose(views.affine_resample(x, full, 8), x, atol=1e-5)
    flipped = views.affine_resample(x, full, 8, flip=torch.tensor([True, False]))
    assert torch.allclose(flipped[0], x[0].flip(-1), atol=1e-5)
    assert torch.allclose(flipped[1], x[1], atol=1e-5)


def test_crop_boxes_fit_inside_the_image():
    torch.manual_seed(1)
    b = views.crop_boxes(500, (0.08, 1.0), (0.5, 2.0), torch.device("cpu"))
    cx, cy, w, h = b.unbind(1)
    assert ((cx - w / 2) >= -1e-6).all() and ((cx + w / 2) <= 1 + 1e-6).all()
    assert ((cy - h / 2) >= -1e-6).all() and ((cy + h / 2) <= 1 + 1e-6).all()
    assert torch.allclose((w * h).max(), torch.tensor(1.0), atol=0.05) or (w * h).max() <= 1


def test_grayscale_and_jitter_probabilities():
    x = torch.rand(4, 3, 5, 5)
    assert torch.equal(views.random_grayscale(x, 0.0), x)
    g = views.random_grayscale(x, 1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert torch.equal(views.color_jitter(x, 0.4, 0.4, 0.4, 0.1, p=0.0), x)


def test_blur_preserves_constant_images_and_smooths_noise():
    flat = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(views.gaussian_blur(flat, 7, (1.0, 2.0), 1.0), flat, atol=1e-6)
    noise = torch.rand(2, 3, 9, 9)
    assert views.gaussian_blur(noise, 7, (1.0, 2.0), 1.0).std() < noise.std()


def test_hsv_hue_shift_matches_torchvision_per_sample():
    from torchvision.transforms.v2 import functional as TF

    torch.manual_seed(0)
    x = torch.rand(4, 3, 6, 6)
    x[0, :, 0, 0] = 0.5  # a gray pixel (no hue)
    turns = torch.tensor([-0.2, 0.1, 0.0, 0.45])
    got = views._shift_hue_hsv(x, turns)
    for i in range(4):
        assert torch.allclose(got[i], TF.adjust_hue(x[i], float(turns[i])), atol=1e-5), i


def test_hue_rotation_by_a_full_turn_is_identity():
    x = torch.rand(3, 3, 4, 4)
    assert torch.allclose(views._rotate_hue(x, torch.ones(3)), x, atol=1e-4)
