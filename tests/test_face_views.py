"""Face views of PCL/PCFRL: pose transform, distance crop, official appearance pipeline."""

from __future__ import annotations

import math

import pytest
import torch

from pcfrl_bench.data.views import (
    FaceAugmentParams,
    distance_crop_boxes,
    face_appearance,
    face_views,
    gradient_magnitude,
    pose_transform,
    pose_views,
)



def _left_bright(b: int = 4, size: int = 32) -> torch.Tensor:
    """A left/right asymmetric 'face': bright left half, dark right half (a stand-in for a yawed head)."""
    x = torch.full((b, 3, size, size), 0.1)
    x[..., : size // 2] = 0.9
    return x


def _yaw_sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where the left half is brighter than the right half, per image."""
    half = x.shape[-1] // 2
    return torch.sign(x[..., :half].mean((1, 2, 3)) - x[..., half:].mean((1, 2, 3)))


@pytest.mark.parametrize("deg", [0.0, 15.0])
def test_pose_transform_changes_yaw_sign(deg: float) -> None:
    torch.manual_seed(0)
    x = _left_bright()
    y = pose_transform(x, deg)
    assert y.shape == x.shape
    assert (_yaw_sign(x) == 1).all() and (_yaw_sign(y) == -1).all()


def test_pose_transform_without_rotation_is_the_exact_mirror() -> None:
    x = torch.rand(3, 3, 16, 16)
    assert torch.equal(pose_transform(x, 0.0), x.flip(-1))


def test_pose_transform_rotation_is_per_sample() -> None:
    torch.manual_seed(1)
    x = _left_bright(1).repeat(6, 1, 1, 1)
    x[..., :4, :] = 0.5  # break the vertical symmetry so rotations differ visibly
    y = pose_transform(x, 15.0)
    diffs = (y[1:] - y[:1]).abs().amax((1, 2, 3))
    assert (diffs > 1e-3).all()  # six independent angles, not one per batch


def test_distance_crop_boxes_non_overlapping_distinct_quadrants() -> None:
    torch.manual_seed(0)
    b1, b2 = distance_crop_boxes(500, 0.4, torch.device("cpu"))
    for b in (b1, b2):
        assert torch.allclose(b[:, 2:], torch.full((500, 2), 0.4))
        lo, hi = b[:, :2] - 0.2, b[:, :2] + 0.2
        assert (lo >= -1e-6).all() and (hi <= 1 + 1e-6).all()
    quad = lambda b: (b[:, 0] > 0.5).long() + 2 * (b[:, 1] > 0.5).long()  # noqa: E731
    assert (quad(b1) != quad(b2)).all()
    # each patch stays inside its quadrant: centre in [0.2, 0.3] or [0.7, 0.8] along each axis
    for b in (b1, b2):
        off = b[:, :2] % 0.5
        assert ((off >= 0.2 - 1e-6) & (off <= 0.3 + 1e-6)).all()
    overlap_x = (b1[:, 0] - b2[:, 0]).abs() < 0.4
    overlap_y = (b1[:, 1] - b2[:, 1]).abs() < 0.4
    assert not (overlap_x & overlap_y).any()
    assert len(set(quad(b1).tolist())) == 4  # all quadrants are drawn


def test_face_views_are_patches_of_the_face() -> None:
    torch.manual_seed(0)
    x = torch.zeros(2, 3, 64, 64)
    x[0, :, :32, :32] = 1.0  # image 0: only the top-left quadrant is white
    no_aug = FaceAugmentParams(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, sobel_p=0.0)
    v1, v2 = face_views(x, no_aug)
    assert v1.shape == x.shape and v2.shape == x.shape
    m1, m2 = v1[0].mean(), v2[0].mean()
    # at most one of the two patches can lie in the white quadrant; a patch there is entirely white
    assert min(m1, m2) < 1e-4 or max(m1, m2) > 1 - 1e-4
    assert not (m1 > 0.5 and m2 > 0.5)
    assert torch.equal(v1[1], torch.zeros_like(v1[1]))


def test_gradient_magnitude_by_hand() -> None:
    x = torch.zeros(1, 3, 5, 5)
    x[..., 3:] = 1.0  # vertical edge between columns 2 and 3; gray value = (65.738+129.057+25.064)/256
    gray = (65.738 + 129.057 + 25.064) / 256
    g = gradient_magnitude(x)[0, 0]
    eps = math.sqrt(1e-6)
    # central difference x[c+1]-x[c-1] is `gray` at columns 2 and 3, zero elsewhere (replicate padding)
    assert torch.allclose(g[:, 2], torch.full((5,), math.sqrt(gray**2 + 1e-6)), atol=1e-6)
    assert torch.allclose(g[:, 3], torch.full((5,), math.sqrt(gray**2 + 1e-6)), atol=1e-6)
    assert torch.allclose(g[:, 0], torch.full((5,), eps), atol=1e-6)
    # zero padding (official): the right border sees 1 - 0 in x, the top/bottom rows of the white part in y
    z = gradient_magnitude(x, "zero")[0, 0]
    assert float(z[2, 4]) == pytest.approx(math.sqrt(gray**2 + 1e-6), abs=1e-6)  # gx = 0 (pad) - gray, gy = 0
    assert float(z[0, 4]) == 1.0  # corner: gx = gy = gray, sqrt(2) gray > 1 is clamped
    assert torch.allclose(z[1:4, 0], torch.full((3,), eps), atol=1e-6)  # black border: 0 - 0


def test_face_appearance_probabilities_and_range() -> None:
    torch.manual_seed(0)
    x = torch.rand(400, 3, 8, 8)
    only_sobel = FaceAugmentParams(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, sobel_p=0.6)
    y = face_appearance(x, only_sobel)
    changed = (y != x).flatten(1).any(1).float().mean()
    assert abs(float(changed) - 0.6) < 0.08
    y = face_appearance(x, FaceAugmentParams())
    assert y.min() >= 0 and y.max() <= 1 and y.shape == x.shape


def test_pose_views_keep_the_pose() -> None:
    torch.manual_seed(0)
    x = _left_bright(8)
    no_colour = FaceAugmentParams(jitter_p=0.0, grayscale_p=0.0, sobel_p=0.0)  # blur only
    a, b = pose_views(x, no_colour)
    assert (_yaw_sign(a) == 1).all() and (_yaw_sign(b) == 1).all()
