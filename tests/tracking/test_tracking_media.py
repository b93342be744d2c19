"""``log_figure`` (matplotlib) and ``log_image`` (PIL or a NumPy array): PNG artifacts of the run."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest

import plinth

matplotlib.use("Agg")  # no display here or in CI

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _artifact(run_id: str, name: str) -> tuple[bytes, str]:
    infos = {a.name: a for a in plinth.list_artifacts(f"runs:/{run_id}")}
    return plinth.read_artifact(f"runs:/{run_id}", name), infos[name].media_type


def test_log_figure_stores_a_png_and_an_svg() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [1, 0.5, 0.2])
    with plinth.start_run() as run:
        info = plinth.log_figure(fig, "plots/loss.png")
        run.log_figure(fig, "plots/loss.svg")
    plt.close(fig)
    content, media_type = _artifact(run.id, "plots/loss.png")
    assert content.startswith(PNG_SIGNATURE) and media_type == "image/png"
    assert info.size == len(content) and info.media_type == "image/png"
    svg, svg_type = _artifact(run.id, "plots/loss.svg")
    assert b"<svg" in svg and svg_type == "image/svg+xml"


def test_log_image_from_pil_and_from_arrays() -> None:
    from PIL import Image

    gradient = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (8, 1))
    rgb = np.stack([gradient, gradient[::-1], np.zeros_like(gradient)], axis=-1)
    with plinth.start_run() as run:
        plinth.log_image(Image.fromarray(rgb), "images/pil.png")
        plinth.log_image(rgb, "images/rgb")  # .png is added
        plinth.log_image(gradient / 255.0, "images/gray.png")  # floats in [0, 1]
    for name in ("images/pil.png", "images/rgb.png", "images/gray.png"):
        content, media_type = _artifact(run.id, name)
        assert content.startswith(PNG_SIGNATURE) and media_type == "image/png"
        image = Image.open(io.BytesIO(content))
        assert image.size == (16, 8)
    back = np.asarray(Image.open(io.BytesIO(_artifact(run.id, "images/pil.png")[0])))
    assert (back == rgb).all()  # PNG is lossless
    back = np.asarray(Image.open(io.BytesIO(_artifact(run.id, "images/rgb.png")[0])).convert("RGB"))
    assert (back == rgb).all()


def test_log_image_needs_an_active_open_run() -> None:
    from plinth.core.errors import Conflict, InvalidInput

    with pytest.raises(InvalidInput):
        plinth.log_image(np.zeros((2, 2)), "x.png")
    with plinth.start_run() as run:
        pass
    with pytest.raises(Conflict):
        run.log_image(np.zeros((2, 2)), "x.png")
