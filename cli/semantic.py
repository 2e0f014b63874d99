"""`rtool semantic`: viewpoint robustness of rendered 3D objects. `render` draws a grid of views of a mesh."""
from __future__ import annotations

from pathlib import Path

import click

from rtool.engine import atomic_path, resolve_device
from rtool.errors import UsageError
from rtool_cli.context import GlobalOptions, pass_options


def parse_angles(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated degrees like 0,45,90") from None
    if not values:
        raise UsageError(f"{option} {text!r}: expected at least one angle in degrees")
    return values


def resolve_mesh(spec: str):
    """A path to an OBJ file, or the name of a procedural mesh."""
    from rtool.render import PROCEDURAL_MESHES, load_obj, procedural_mesh

    path = Path(spec)
    if path.exists() or spec.lower().endswith(".obj"):
        return load_obj(path)
    if spec in PROCEDURAL_MESHES:
        return procedural_mesh(spec)
    raise UsageError(f"MESH {spec!r}: not an OBJ file and not a procedural mesh ({', '.join(PROCEDURAL_MESHES)})")


def save_grid(images, azimuths: list[float], elevations: list[float], title: str, path: Path) -> None:
    """PNG grid: one row per elevation, one column per azimuth, each view labelled with its angles."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = len(elevations), len(azimuths)
    figure = Figure(figsize=(1.8 * cols, 1.9 * rows + 0.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    for i, elevation in enumerate(elevations):
        for j, azimuth in enumerate(azimuths):
            ax = axes[i][j]
            ax.imshow(images[i * cols + j].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_title(f"az {azimuth:g}°  el {elevation:g}°", fontsize=8)
            ax.set_axis_off()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


@click.group()
def semantic() -> None:
    """Over which viewpoints (azimuth, elevation) of a rendered 3D object does the model stay right?"""


@semantic.command("render")
@click.argument("mesh")
@click.option("--azimuths", default="0,45,90,135,180,225,270,315", show_default=True, help="Degrees, comma-separated.")
@click.option("--elevations", default="-10,20,50", show_default=True, help="Degrees, comma-separated.")
@click.option("--image-size", type=click.IntRange(min=8, max=2048), default=224, show_default=True,
              help="Output side S (drawn at 2S and averaged down).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write (default: <out>/render_<mesh>.png, out = --out or rtool-out/semantic).")
@pass_options
def render(opts: GlobalOptions, mesh: str, azimuths: str, elevations: str, image_size: int,
           output: Path | None) -> None:
    """Renders MESH (an OBJ file or a procedural mesh name such as cube, cup, torus) as a grid of views."""
    import torch

    from rtool.render import Renderer

    azimuth_list = parse_angles(azimuths, "--azimuths")
    elevation_list = parse_angles(elevations, "--elevations")
    bad = [e for e in elevation_list if not -90 < e < 90]
    if bad:
        raise UsageError(f"--elevations {bad[0]:g}: expected degrees strictly between -90 and 90 "
                         "(the camera flips at ±90)")
    loaded = resolve_mesh(mesh)
    device = resolve_device(opts.device)
    renderer = Renderer(image_size=image_size, device=device)
    az = torch.tensor([a for _ in elevation_list for a in azimuth_list])
    el = torch.tensor([e for e in elevation_list for _ in azimuth_list])
    with torch.no_grad():
        images = renderer.render(loaded, az, el).cpu()
    path = output or (opts.out or Path("rtool-out") / "semantic") / f"render_{loaded.name}.png"
    save_grid(images, azimuth_list, elevation_list, f"{loaded.name}: {loaded.num_faces} faces, {image_size}px", path)
    click.echo(f"rendered {len(az)} views of {loaded.name} ({loaded.num_faces} faces) "
               f"at {image_size}x{image_size}: {path}")
