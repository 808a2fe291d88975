"""Common corruptions computed in the TensorFlow graph, for any image size (a CIFAR-10-C stand-in).

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019) define 19 corruptions at 5 severities; their CIFAR-10-C script
(``make_cifar_c.py`` in github.com/hendrycks/robustness) fixes each one's parameters for
32x32 images. This module writes the ones that need no external image files or weather
textures as TensorFlow ops, with those published parameters:

=================  =========================================  ==============================
corruption         severities 1..5 (CIFAR-10-C's values)      scaled to the image size
=================  =========================================  ==============================
gaussian_noise     std .04 .06 .08 .09 .10                    no
shot_noise         Poisson photons 500 250 100 75 50          no
impulse_noise      salt-and-pepper share .01 .02 .03 .05 .07  no
defocus_blur       disk radius .3 .4 .5 1 1.5 (alias blur     no (see below)
                   .4 .5 .6 .2 .1)
gaussian_blur      sigma .4 .6 .7 .8 1                        sigma
motion_blur        radius 6 6 6 8 9, sigma 1 1.5 2 2 2.5,     radius and sigma
                   angle uniform in [-45, 45] degrees
zoom_blur          zooms 1..1.05 .. 1..1.25 in steps of .01   no (relative)
contrast           factor .75 .5 .4 .3 .15                    no
brightness         HSV value + .05 .1 .15 .2 .3               no
saturate           HSV saturation x .3 .1 1.5 2 2.5 (+ 0 0 0  no (colour images only)
                   .1 .2)
pixelate           side x .95 .9 .85 .75 .65                  no (relative)
jpeg_compression   quality 80 65 58 50 40                     no
elastic_transform  (alpha, sigma, affine) x image side:       yes, by definition
                   (0,0,.08) (.05,.2,.07) (.08,.06,.06)
                   (.1,.04,.05) (.1,.03,.03)
=================  =========================================  ==============================

"Scaled" parameters are lengths in pixels: for an image of side S they are multiplied by
S / 32 (Fashion-MNIST: 0.875), so a corruption degrades a 28x28 image as much, relative to
its size, as CIFAR-10-C degrades a 32x32 one.

Departures from the published script (all documented so numbers can be read honestly):

* the random draws are TensorFlow's stateless generators, seeded by ``seed`` and the
  corruption, not numpy's global state: the same seed gives the same images, and every
  severity of an image sees the same draws (the same noise, stronger; the same blur angle);
* blurs pad by replicating the edge (``gaussian_blur``, skimage's default) or by reflection
  (``defocus_blur``, ``elastic_transform``: OpenCV's and scipy's defaults);
* ``motion_blur`` averages bilinearly shifted copies with ImageMagick's one-sided Gaussian
  weights instead of calling ImageMagick; ``zoom_blur`` scales about the centre with
  bilinear sampling (scipy's ``zoom`` of a centre crop in the original);
* ``elastic_transform`` samples once through the composed affine and displacement maps
  (the original interpolates twice);
* ``defocus_blur``'s disk radii (at most 1.5 pixels) are not scaled: the disk is drawn on the
  pixel grid, and radius 1 scaled to 0.875 would keep only the centre pixel, making severity
  4 a no-op;
* ``pixelate`` shrinks to the side times the factor *rounded* (the original truncates: on a
  28-pixel side that orders the severities wrongly), by area averaging, and enlarges by
  nearest neighbour (PIL's box filter in the original); ``jpeg_compression`` is
  ``tf.image.adjust_jpeg_quality``;
* ``elastic_transform`` keeps the published parameters although they do not order the
  damage: its random affine part shrinks with severity (8 % of the side at 1, 3 % at 5) while
  the smooth elastic part grows, so severity 1 moves pixels the most on most images;
* ``saturate`` keeps the published parameters too: severities 1-2 desaturate (x 0.3, x 0.1)
  and 3-5 oversaturate (x 1.5 to 2.5), so severity 2 can move pixels more than 3;
* grayscale images: ``brightness`` adds to the value itself (the HSV value of a grey pixel),
  ``saturate`` does not apply (it is left out of the defaults and refused by name).

Every corruption is TensorFlow ops on a batch: ``CORRUPTIONS[name](images, severity - 1, seed)``
(float32 ``(N, H, W, C)`` in [0, 1] with static height, width and channels; ``seed`` a shape-[2]
integer tensor) runs eagerly, inside ``tf.function`` or in a ``tf.data`` map; :func:`corrupt`
wraps it for numpy arrays of either dtype.

Weather corruptions (snow, frost, fog, spatter) and glass blur are not here: frost needs the
authors' photographs, and the others are defined through those textures or per-pixel Python
loops; CIFAR-10-C itself (``tl.evals.shift_sets``) has all 19.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf

SEVERITIES = (1, 2, 3, 4, 5)
CHUNK = 1000  # images corrupted per graph call: the random draws depend on it, so it is fixed

_GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
_SHOT_NOISE = (500, 250, 100, 75, 50)
_IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
_DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))
_GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)
_MOTION = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))
_ZOOM_MAX = (1.06, 1.11, 1.16, 1.21, 1.26)  # zooms 1, 1.01, ... below this
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
_BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
_SATURATE = ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))
_PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)
_JPEG = (80, 65, 58, 50, 40)
_ELASTIC = ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))


# ---------------------------------------------------------------- helpers (float images in [0, 1], NHWC)

def _scale(images: tf.Tensor) -> float:
    """Lengths of the 32x32 definitions are multiplied by this (the image's side / 32)."""
    return min(images.shape[1], images.shape[2]) / 32.0


def _index_map(size: int, pad: int, mode: str) -> np.ndarray:
    """Source index of every position of a padded axis (``edge``: replicate; ``reflect``: mirror
    without repeating the edge, bouncing as often as needed)."""
    positions = np.arange(-pad, size + pad)
    if mode == "edge" or size == 1:
        return np.clip(positions, 0, size - 1)
    period = 2 * (size - 1)
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - folded)


def _pad(images: tf.Tensor, pad: int, mode: str) -> tf.Tensor:
    """Pads height and width by ``pad`` on each side (any ``pad``, unlike ``tf.pad``'s reflection)."""
    if pad == 0:
        return images
    rows = _index_map(images.shape[1], pad, mode)
    cols = _index_map(images.shape[2], pad, mode)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


def _filter(images: tf.Tensor, kernel: np.ndarray, mode: str) -> tf.Tensor:
    """Correlates every channel with one odd-sized 2-D ``kernel``, padding by ``mode``."""
    half = kernel.shape[0] // 2
    channels = images.shape[-1]
    weights = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)), tf.float32)
    return tf.nn.depthwise_conv2d(_pad(images, half, mode), weights, [1, 1, 1, 1], "VALID")


def _gaussian_1d(sigma: float, radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1, dtype="float64")
    weights = np.exp(-offsets ** 2 / (2 * sigma ** 2)) if sigma > 0 else (offsets == 0).astype("float64")
    return weights / weights.sum()


def _gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """skimage's Gaussian: radius ``truncate`` sigmas, normalised."""
    line = _gaussian_1d(sigma, max(1, int(truncate * sigma + 0.5)))
    return np.outer(line, line)


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The published defocus kernel: a normalised disk, smoothed by a 3x3 Gaussian of ``alias_blur``."""
    half = int(math.ceil(radius)) + 1
    grid = np.arange(-half, half + 1)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    disk = (rows ** 2 + cols ** 2 <= radius ** 2).astype("float64")
    disk /= disk.sum()
    line = _gaussian_1d(alias_blur, 1)
    padded = np.pad(disk, 1)
    smoothed = sum(line[i] * line[j] * padded[i:i + disk.shape[0], j:j + disk.shape[1]]
                   for i in range(3) for j in range(3))
    return smoothed


def _sample(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Bilinear samples of each image at float source coordinates ``(N, H, W)``, edges replicated."""
    height, width = images.shape[1], images.shape[2]
    rows = tf.clip_by_value(rows, 0.0, height - 1.0)
    cols = tf.clip_by_value(cols, 0.0, width - 1.0)
    top, left = tf.floor(rows), tf.floor(cols)
    down, right = rows - top, cols - left
    top, left = tf.cast(top, tf.int32), tf.cast(left, tf.int32)
    bottom, rightmost = tf.minimum(top + 1, height - 1), tf.minimum(left + 1, width - 1)

    def at(r, c):
        return tf.gather_nd(images, tf.stack([r, c], axis=-1), batch_dims=1)

    down, right = down[..., None], right[..., None]
    upper = at(top, left) * (1 - right) + at(top, rightmost) * right
    lower = at(bottom, left) * (1 - right) + at(bottom, rightmost) * right
    return upper * (1 - down) + lower * down


def _grid(images: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Row and column coordinates ``(N, H, W)`` of every pixel."""
    count = tf.shape(images)[0]
    rows, cols = tf.meshgrid(tf.range(images.shape[1], dtype=tf.float32),
                             tf.range(images.shape[2], dtype=tf.float32), indexing="ij")
    return tf.tile(rows[None], [count, 1, 1]), tf.tile(cols[None], [count, 1, 1])


def _seeds(seed: tf.Tensor, count: int) -> tf.Tensor:
    return tf.random.experimental.stateless_split(seed, count)


# ---------------------------------------------------------------- the corruptions: (images, severity, seed)

def _gaussian_noise(images, level, seed):
    noise = tf.random.stateless_normal(tf.shape(images), seed, stddev=_GAUSSIAN_NOISE[level])
    return images + noise


def _shot_noise(images, level, seed):
    photons = _SHOT_NOISE[level]
    return tf.random.stateless_poisson(tf.shape(images), seed, images * photons, dtype=tf.float32) / photons


def _impulse_noise(images, level, seed):
    share = _IMPULSE_NOISE[level]
    draw = tf.random.stateless_uniform(tf.shape(images), seed)
    images = tf.where(draw < share / 2, 0.0, images)  # pepper
    return tf.where((draw >= share / 2) & (draw < share), 1.0, images)  # salt


def _defocus_blur(images, level, seed):
    radius, alias_blur = _DEFOCUS[level]
    return _filter(images, _disk_kernel(radius, alias_blur), "reflect")  # not scaled: see the module docstring


def _gaussian_blur(images, level, seed):
    return _filter(images, _gaussian_kernel(_GAUSSIAN_BLUR[level] * _scale(images)), "edge")


def _motion_blur(images, level, seed):
    radius, sigma = _MOTION[level]
    radius, sigma = radius * _scale(images), sigma * _scale(images)
    taps = 2 * int(round(radius)) + 1  # ImageMagick's kernel width for this radius, one-sided
    weights = np.exp(-np.arange(taps) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    angle = tf.random.stateless_uniform([tf.shape(images)[0]], seed, -45.0, 45.0) * (math.pi / 180)
    rows, cols = _grid(images)
    step_rows, step_cols = tf.sin(angle)[:, None, None], tf.cos(angle)[:, None, None]
    return tf.add_n([float(w) * _sample(images, rows - i * step_rows, cols - i * step_cols)
                     for i, w in enumerate(weights)])


def _zoom_blur(images, level, seed):
    zooms = np.arange(1.0, _ZOOM_MAX[level], 0.01)
    rows, cols = _grid(images)
    centre_row, centre_col = (images.shape[1] - 1) / 2, (images.shape[2] - 1) / 2
    zoomed = [_sample(images, centre_row + (rows - centre_row) / z, centre_col + (cols - centre_col) / z)
              for z in zooms]
    return (images + tf.add_n(zoomed)) / (len(zooms) + 1)


def _contrast(images, level, seed):
    means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return (images - means) * _CONTRAST[level] + means


def _brightness(images, level, seed):
    if images.shape[-1] != 3:
        return images + _BRIGHTNESS[level]  # the HSV value of a grey pixel is the pixel
    hsv = tf.image.rgb_to_hsv(images)
    value = tf.clip_by_value(hsv[..., 2:] + _BRIGHTNESS[level], 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.concat([hsv[..., :2], value], axis=-1))


def _saturate(images, level, seed):
    factor, shift = _SATURATE[level]
    hsv = tf.image.rgb_to_hsv(images)
    saturation = tf.clip_by_value(hsv[..., 1:2] * factor + shift, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.concat([hsv[..., :1], saturation, hsv[..., 2:]], axis=-1))


def _pixelate(images, level, seed):
    height, width = images.shape[1], images.shape[2]
    small = tf.image.resize(images, [round(height * _PIXELATE[level]), round(width * _PIXELATE[level])], "area")
    return tf.image.resize(small, [height, width], "nearest")


def _jpeg_compression(images, level, seed):
    quality = _JPEG[level]
    return tf.map_fn(lambda image: tf.image.adjust_jpeg_quality(image, quality), images)


def _elastic_transform(images, level, seed):
    side = min(images.shape[1], images.shape[2])
    alpha, sigma, shift = (value * side for value in _ELASTIC[level])
    count = tf.shape(images)[0]
    affine_seed, row_seed, col_seed = tf.unstack(_seeds(seed, 3))
    # A random affine map: three points around the centre move by up to `shift` pixels each.
    centre = np.array([images.shape[1] // 2, images.shape[2] // 2], "float32")
    third = side // 3
    points = tf.constant(np.stack([centre + third, [centre[0] + third, centre[1] - third], centre - third]))
    moved = points + tf.random.stateless_uniform([count, 3, 2], affine_seed, -shift, shift)
    # Solve for the map taking moved points back to the originals: sampling needs dst -> src.
    moved_h = tf.concat([moved, tf.ones([count, 3, 1])], axis=-1)
    inverse = tf.linalg.solve(moved_h, tf.tile(points[None], [count, 1, 1]))  # (N, 3, 2)
    # A smooth random displacement field (a Gaussian of `sigma`, truncated at 3 sigmas) of size `alpha`.
    kernel = _gaussian_kernel(sigma, truncate=3.0) if sigma > 0 else np.ones((1, 1))

    def field(field_seed):
        noise = tf.random.stateless_uniform([count, images.shape[1], images.shape[2], 1], field_seed, -1.0, 1.0)
        return _filter(noise, kernel, "reflect")[..., 0] * alpha

    rows, cols = _grid(images)
    rows, cols = rows + field(row_seed), cols + field(col_seed)
    source = tf.stack([rows, cols, tf.ones_like(rows)], axis=-1)  # (N, H, W, 3)
    mapped = tf.einsum("nhwk,nkj->nhwj", source, inverse)
    return _sample(images, mapped[..., 0], mapped[..., 1])


#: The corruptions :func:`corrupt` applies, by name, in the published table's order (Hendrycks and Dietterich, 2019).
CORRUPTIONS: Dict[str, Callable] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "gaussian_blur": _gaussian_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "saturate": _saturate,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "elastic_transform": _elastic_transform,
}
COLOUR_ONLY = ("saturate",)
#: Corruptions whose published severities do not order the damage (see the module docstring).
NOT_ORDERED = ("saturate", "elastic_transform")


def applicable(channels: int) -> list[str]:
    """The corruptions defined for images with ``channels`` channels, in the table's order.

    Example:
        >>> "saturate" in applicable(1), "saturate" in applicable(3)
        (False, True)
    """
    return [name for name in CORRUPTIONS if channels == 3 or name not in COLOUR_ONLY]


def check(corruption: str, severity: int, channels: int) -> None:
    """Checks a corruption name and severity against the images' channel count.

    Raises:
        ValueError: naming the bad value and what is allowed.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; valid names: {', '.join(CORRUPTIONS)}")
    if corruption not in applicable(channels):
        raise ValueError(f"corruption {corruption!r} needs colour images; these have {channels} channel(s); "
                         f"corruptions for them: {', '.join(applicable(channels))}")
    if severity not in (0, *SEVERITIES):
        raise ValueError(f"severity must be 0 (no corruption) or 1 to 5; got {severity!r}")


def _corrupt_chunk(images: np.ndarray, corruption: str, severity: int, seed: int, chunk: int) -> np.ndarray:
    # The draws depend on the corruption, not on the severity: every severity of an image sees the
    # same noise and angles, stronger, so severity is the only thing that changes.
    key = list(CORRUPTIONS).index(corruption) * 100_003 + chunk
    tensor = tf.constant(images, tf.float32)
    out = CORRUPTIONS[corruption](tensor, severity - 1, tf.constant([seed, key], tf.int64))
    return tf.clip_by_value(out, 0.0, 1.0).numpy()


def corrupt(images, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """Corrupts images with one of the published corruptions at severity 1 to 5 (0: unchanged).

    Args:
        images: ``(N, H, W, C)`` or ``(H, W, C)`` images: uint8 in [0, 255] or float in [0, 1]
            (other value ranges are refused).
        corruption: A name of :data:`CORRUPTIONS` that applies to ``C`` channels.
        severity: 0 to 5.
        seed: The random draws' seed: the same images, corruption, severity and seed give the
            same result.

    Returns:
        The corrupted images, with the input's dtype and shape (uint8 rounded; floats in [0, 1]).

    Raises:
        ValueError: for an unknown corruption, a colour-only corruption on grayscale images, a
            severity outside 0..5, or images that are not 3-D/4-D or out of range.

    Example:
        >>> noisy = tl.evals.corrupt(x_test_uint8, "gaussian_noise", severity=3, seed=0)
    """
    array = np.asarray(images)
    single = array.ndim == 3
    batch = array[None] if single else array
    if batch.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C); got shape {array.shape}")
    check(corruption, severity, batch.shape[-1])
    is_uint8 = array.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1]; got dtype {array.dtype}")
    scaled = batch.astype("float32") / 255.0 if is_uint8 else batch.astype("float32")
    if not is_uint8 and len(scaled) and (scaled.min() < 0 or scaled.max() > 1):
        raise ValueError(f"float images must be in [0, 1]; these range over [{scaled.min():g}, {scaled.max():g}] "
                         "(pass uint8 images, or scale them first)")
    if severity == 0:
        return np.array(images, copy=True)
    out = np.concatenate([_corrupt_chunk(scaled[start:start + CHUNK], corruption, severity, seed, start // CHUNK)
                          for start in range(0, len(scaled), CHUNK)] or [scaled])
    if is_uint8:
        out = np.round(out * 255.0).astype(np.uint8)
    else:
        out = out.astype(array.dtype)
    return out[0] if single else out
