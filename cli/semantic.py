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


# ------------------------------------------------------------------------------------------- map / optim

def _objective(opts: GlobalOptions, mesh: str | None, model_name: str | None, weights: str | None,
               class_index: int | None, parity: bool, batch_size: int, shapenet: Path | None = None,
               class_nb: int = 0, object_nb: int = 0):
    """(f, identity, planted box or None): the embedded default when no --model is given."""
    from rtool.models import build_model
    from rtool.semantic import ViewPreprocess, ViewScore, load_semantic_default

    device = resolve_device(opts.device)
    if model_name is None:
        if shapenet is not None:
            raise UsageError("--shapenet needs --model (an ImageNet classifier, e.g. --model resnet50 "
                             "--weights DEFAULT)")
        if weights is not None:
            raise UsageError("--weights needs --model (the embedded default has its own weights)")
        default = load_semantic_default(device=device, quiet=opts.quiet)
        name = mesh or next(iter(default.meshes))
        if name not in default.meshes:
            raise UsageError(f"MESH {name!r}: the embedded default knows {', '.join(default.meshes)}; "
                             "give --model to study another mesh")
        index = default.class_names.index(name) if class_index is None else class_index
        f = ViewScore(default.model, default.meshes[name], index, default.preprocess, batch_size=batch_size,
                      device=device)
        identity = {"network_name": "semantic_default", "class_nb": index, "shape_id": name}
        return f, identity, (default.planted_low, default.planted_high)
    if shapenet is not None:
        from rtool.render import load_shapenet, semantic_class, shapenet_mesh_path

        if mesh is not None:
            raise UsageError("give MESH or --shapenet ROOT, not both")
        entry = semantic_class(class_nb)
        path = shapenet_mesh_path(shapenet, class_nb, object_nb)
        loaded = load_shapenet(shapenet, class_nb, object_nb)
        index = entry.imagenet_index if class_index is None else class_index
        net = build_model(model_name, weights)
        f = ViewScore(net, loaded, index, ViewPreprocess.for_model(model_name, weights, parity=parity),
                      batch_size=batch_size, device=device)
        return f, {"network_name": model_name, "class_nb": entry.class_nb, "shape_id": path.parts[-3]}, None
    if mesh is None:
        raise UsageError("MESH is required with --model: an OBJ file or a procedural mesh name")
    if class_index is None:
        raise UsageError("--class is required with --model: the model's index of the mesh's true class")
    loaded = resolve_mesh(mesh)
    net = build_model(model_name, weights)
    preprocess = ViewPreprocess.for_model(model_name, weights, parity=parity)
    f = ViewScore(net, loaded, class_index, preprocess, batch_size=batch_size, device=device)
    return f, {"network_name": model_name, "class_nb": class_index, "shape_id": loaded.name}, None


def _out_dir(opts: GlobalOptions, output: Path | None) -> Path:
    from rtool.report.outputs import prepare_out_dir

    return prepare_out_dir(output or opts.out or Path("rtool-out") / "semantic")


def _common(command):
    from rtool.semantic import MapSettings
    from rtool_cli.options import default_of

    for decorator in reversed([
        click.argument("mesh", required=False),
        click.option("--model", "model_name", help="torchvision model name (default: the embedded default)."),
        click.option("--weights", help="DEFAULT, a torchvision weights name, or a checkpoint path."),
        click.option("--class", "class_index", type=click.IntRange(min=0), help="True class index of MESH."),
        click.option("--parity", is_flag=True, help="The original's raw [0,1] 224² input (and, for optim, its "
                     "gradient sign and no-op domain clipping)."),
        click.option("--grid", type=click.Choice(["2d", "1d"]), default=default_of(MapSettings, "grid"),
                     show_default=True, help="Azimuth x elevation, or azimuth at elevation 35°."),
        click.option("--batch-size", type=click.IntRange(min=1), default=default_of(MapSettings, "views_per_batch"),
                     show_default=True, help="Views rendered and classified together."),
        click.option("--output", type=click.Path(file_okay=False, path_type=Path),
                     help="Folder to write (default: --out or rtool-out/semantic)."),
        click.option("--shapenet", type=click.Path(file_okay=False, path_type=Path),
                     help="ShapeNet layout root (<root>/<class>/<id>/models/model_normalized.obj) instead of MESH."),
        click.option("--class-nb", type=click.IntRange(0, 9), default=0, show_default=True,
                     help="With --shapenet: the class (0 aeroplane .. 9 toilet; its ImageNet index is the true "
                          "class)."),
        click.option("--object-nb", type=click.IntRange(min=0), default=0, show_default=True,
                     help="With --shapenet: the object (sorted model ids)."),
    ]):
        command = decorator(command)
    return command


@semantic.command("map")
@_common
@click.option("--azimuth-step", type=float, help="Degrees (default 3 in 2-D, 2 in 1-D).")
@click.option("--elevation-step", type=float, help="Degrees (default 3; 2-D only).")
@click.option("--override", is_flag=True, help="Recompute even if map.pt exists.")
@pass_options
def map_command(opts: GlobalOptions, mesh, model_name, weights, class_index, parity, grid, batch_size, output,
                shapenet, class_nb, object_nb, azimuth_step, elevation_step, override) -> None:
    """Semantic map of MESH: f(u) = probability of the true class over the viewpoint grid -> map.pt, map.png."""
    import torch

    from rtool.engine import atomic_save_torch
    from rtool.report.semantic import map_figure
    from rtool.semantic import MapSettings, map_dict, semantic_map

    settings = MapSettings(grid=grid, azimuth_step=azimuth_step, elevation_step=elevation_step,
                           views_per_batch=batch_size)
    out = _out_dir(opts, output)
    path = out / "map.pt"
    if path.exists() and not override:
        click.echo(f"{path} exists; --override recomputes it")
        return
    f, identity, planted = _objective(opts, mesh, model_name, weights, class_index, parity, batch_size, shapenet,
                                      class_nb, object_nb)
    heat = semantic_map(f, settings)
    atomic_save_torch(path, map_dict(heat, identity["class_nb"], identity["network_name"], identity["shape_id"]))
    title = f"{identity['network_name']} / {identity['shape_id']} / class {identity['class_nb']}"
    map_figure(heat, title, out / "map.png")
    z = heat.scores
    click.echo(f"map {tuple(z.shape)} of {identity['shape_id']}: mean {float(z.mean()):.3f}, max {float(z.max()):.3f}, "
               f"f > 0.5 on {float((z > 0.5).float().mean()) * 100:.1f}% of views: {path}")
    if planted is not None and heat.grid == "2d":
        xx, yy = heat.meshgrid()
        u = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
        from rtool.semantic.default import inside
        mask = inside(u, *planted)
        click.echo(f"planted range {planted[0].tolist()}..{planted[1].tolist()}: mean f inside "
                   f"{float(z.reshape(-1)[mask].mean()):.3f}, outside {float(z.reshape(-1)[~mask].mean()):.3f}")


def _map_objects(opts: GlobalOptions, model_name, weights, parity, shapenet, classes, max_objects):
    """(model, preprocess, network name, objects, planted box or None) of a multi-object run."""
    from rtool.models import build_model
    from rtool.render import SEMANTIC_CLASSES
    from rtool.semantic import ObjectSpec, ViewPreprocess, load_semantic_default, shapenet_objects
    from rtool_cli.options import parse_int_list

    device = resolve_device(opts.device)
    if model_name is None:
        if shapenet is not None or weights is not None:
            raise UsageError("--shapenet and --weights need --model (an ImageNet classifier, e.g. --model resnet50 "
                             "--weights DEFAULT)")
        default = load_semantic_default(device=device, quiet=opts.quiet)
        objects = [ObjectSpec(f"procedural:{name}", default.class_names.index(name), name, name)
                   for name in default.meshes]
        planted = (default.planted_low, default.planted_high)
        return default.model, default.preprocess, "semantic_default", objects, planted
    if shapenet is None:
        raise UsageError("--model needs --shapenet ROOT (the objects to map); for one mesh use `rtool semantic map`")
    if not Path(shapenet).is_dir():
        raise UsageError(f"--shapenet {str(shapenet)!r} is not a folder; expected <root>/<class>/<id>/models/...")
    wanted = parse_int_list("--classes", classes)
    if wanted is None:
        wanted = [c.class_nb for c in SEMANTIC_CLASSES
                  if any((Path(shapenet) / name).is_dir() for name in (c.folder, c.synset) if name)]
        if not wanted:
            raise UsageError(f"--shapenet {str(shapenet)!r} holds none of the class folders "
                             f"({', '.join(c.folder for c in SEMANTIC_CLASSES)})")
    objects = shapenet_objects(shapenet, list(wanted), max_objects)
    preprocess = ViewPreprocess.for_model(model_name, weights, parity=parity)
    return build_model(model_name, weights), preprocess, model_name, objects, None


@semantic.command("maps")
@click.option("--model", "model_name", help="torchvision model name (default: the embedded default).")
@click.option("--weights", help="DEFAULT, a torchvision weights name, or a checkpoint path.")
@click.option("--parity", is_flag=True, help="The original's raw [0,1] 224² input.")
@click.option("--shapenet", type=click.Path(file_okay=False, path_type=Path),
              help="ShapeNet layout root (<root>/<class>/<id>/models/model_normalized.obj).")
@click.option("--classes", help="Class numbers to map, e.g. 0,4 (default: every class folder under --shapenet).")
@click.option("--objects", "max_objects", type=click.IntRange(min=1), help="At most this many objects per class.")
@click.option("--grid", type=click.Choice(["2d", "1d"]), default="2d", show_default=True)
@click.option("--azimuth-step", type=float, help="Degrees (default 3 in 2-D, 2 in 1-D).")
@click.option("--elevation-step", type=float, help="Degrees (default 3; 2-D only).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Views rendered and classified together.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (default: --out or rtool-out/semantic-maps).")
@pass_options
def maps_command(opts: GlobalOptions, model_name, weights, parity, shapenet, classes, max_objects, grid, azimuth_step,
                 elevation_step, batch_size, output) -> None:
    """Semantic maps of many objects (one resumable shard each, split over torchrun ranks), their per-class
    averages and the data semantic map."""
    import torch

    from rtool.report.outputs import prepare_out_dir
    from rtool.report.semantic.collection import write_object_maps
    from rtool.semantic import MapSettings, object_maps

    settings = MapSettings(grid=grid, azimuth_step=azimuth_step, elevation_step=elevation_step,
                           views_per_batch=batch_size)
    out = prepare_out_dir(output or opts.out or Path("rtool-out") / "semantic-maps")
    model, preprocess, network, objects, planted = _map_objects(opts, model_name, weights, parity, shapenet, classes,
                                                               max_objects)
    result = object_maps(model, objects, preprocess, settings, network_name=network,
                         device=resolve_device(opts.device), out_dir=out, quiet=opts.quiet)
    if result is None:  # not rank 0 under torchrun
        return
    write_object_maps(result, out)
    click.echo(f"{len(objects)} objects of {len(result.groups())} classes under {network}, "
               f"{'x'.join(map(str, result.maps[0].scores.shape))} views each:")
    for group in result.groups():
        heat = result.class_average(group)
        count = sum(spec.group == group for spec in objects)
        click.echo(f"  {group:<12} {count:>4} objects  mean f {heat.mean:.3f}  f > 0.5 on "
                   f"{float((heat.scores > 0.5).float().mean()) * 100:.1f}% of views")
    data = result.data_map()
    click.echo(f"  data semantic map: mean f {data.mean:.3f}")
    if planted is not None and data.grid == "2d":
        from rtool.semantic.default import inside

        xx, yy = data.meshgrid()
        mask = inside(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1), *planted)
        z = data.scores.reshape(-1)
        click.echo(f"  planted range {planted[0].tolist()}..{planted[1].tolist()}: mean f inside "
                   f"{float(z[mask].mean()):.3f}, outside {float(z[~mask].mean()):.3f}")
    click.echo(f"results: {out}/ (maps/<class>/<id>.pt, class_<class>.pt/.png, data_map.pt/.png, curves.png, "
               "summary.csv)")


def parse_points(text: str | None, n: int) -> list[tuple[float, ...]] | None:
    """'130,30;50,20' -> [(130, 30), (50, 20)]."""
    if text is None:
        return None
    try:
        points = [tuple(float(v) for v in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError:
        raise UsageError(f"--start {text!r}: expected points like 130,30;50,20 (degrees)") from None
    for point in points:
        if len(point) != n:
            grid = "1d" if n == 1 else "2d"
            raise UsageError(f"--start point {point}: expected {n} value(s) per point for --grid {grid}")
    return points


@semantic.command("optim")
@_common
@click.option("--start", help="Start points 'az,el;az,el' (1-D: 'az;az'); default the spec's four.")
@click.option("--methods", default="OIR_W,naive,OIR_B", show_default=True, help="Comma-separated.")
@click.option("--iterations", type=click.IntRange(min=1), help="T (default 800).")
@click.option("--grad", "gradient", type=click.Choice(["autograd", "fd"]), default="autograd", show_default=True,
              help="OIR_W's df/du.")
@pass_options
def optim_command(opts: GlobalOptions, mesh, model_name, weights, class_index, parity, grid, batch_size, output,
                  shapenet, class_nb, object_nb, start, methods, iterations, gradient) -> None:
    """Robust regions around start points by naive, OIR_B and OIR_W -> optim.pt, regions.png, convergence.png."""
    import dataclasses

    import torch

    from rtool.engine import atomic_save_torch
    from rtool.report.semantic import convergence_figure, regions_figure
    from rtool.semantic import OptimSettings, map_from_dict, optim_dict, robust_regions

    n = 1 if grid == "1d" else 2
    options = {"methods": tuple(m.strip() for m in methods.split(",") if m.strip()), "parity": parity,
               "gradient": gradient}
    if iterations is not None:
        options["iterations"] = iterations
    settings = OptimSettings(**options)
    points = parse_points(start, n)
    if points is not None:
        from rtool.semantic import check_points
        check_points(points, n)  # before any model is loaded or trained
    out = _out_dir(opts, output)
    f, identity, planted = _objective(opts, mesh, model_name, weights, class_index, parity, batch_size, shapenet,
                                      class_nb, object_nb)
    result = robust_regions(f, points, settings, n=n)
    atomic_save_torch(out / "optim.pt",
                      optim_dict(result, identity["class_nb"], identity["network_name"], identity["shape_id"]))
    heat = None
    if (out / "map.pt").exists():
        record = torch.load(out / "map.pt", weights_only=True)
        if record.get("grid", "2d") == grid and record.get("shape_id") == identity["shape_id"]:
            heat = map_from_dict(record)
    title = f"{identity['network_name']} / {identity['shape_id']}: regions ({settings.iterations} steps)"
    regions_figure(result, heat, title, out / "regions.png", planted if n == 2 else None)
    convergence_figure(result, out / "convergence.png")
    for method, regions in result.regions.items():
        for region in regions:
            box = " x ".join(f"[{lo:.1f}, {hi:.1f}]" for lo, hi in zip(region.a.tolist(), region.b.tolist()))
            line = f"{method:6s} start {tuple(round(v, 1) for v in region.start.tolist())}: {box}"
            if planted is not None and n == 2:
                low, high = planted
                inter = (torch.minimum(region.b, high) - torch.maximum(region.a, low)).clamp(min=0).prod()
                union = (region.b - region.a).prod() + (high - low).prod() - inter
                line += f"  IoU with planted range {float(inter / union):.2f}"
            click.echo(line)
    click.echo(f"wrote {out / 'optim.pt'}, regions.png, convergence.png"
               + ("" if dataclasses.asdict(settings)["parity"] is False else " (parity)"))


@semantic.command("srvr")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-clip", is_flag=True, help="Do not intersect boxes with the domain first.")
@click.option("--volume", type=click.Choice(["prod", "normalised"]), default="prod", show_default=True,
              help="Box volume prod(r), or prod(r) / 2^n.")
def srvr_command(folders, no_clip, volume) -> None:
    """SRVR (% of the domain) per method and the mean of the methods, over every optim.pt under FOLDERS."""
    import torch

    from rtool.semantic import srvr_table

    paths = sorted({p for folder in folders for p in folder.rglob("optim.pt")})
    if not paths:
        raise UsageError(f"no optim.pt under {', '.join(map(str, folders))}: run `rtool semantic optim` first")
    records = []
    for path in paths:
        try:
            records.append(torch.load(path, weights_only=True))
        except Exception as error:  # noqa: BLE001 - an unreadable file is the user's to fix
            raise UsageError(f"{path}: not a readable optim.pt ({type(error).__name__})") from None
    table = srvr_table(records, clip=not no_clip, volume=volume)
    click.echo(f"SRVR over {len(paths)} optim.pt ({'clipped to the domain' if not no_clip else 'unclipped'}, "
               f"volume {volume})")
    click.echo(f"{'method':8s} {'SRVR %':>8s} {'boxes':>6s} {'near-zero %':>12s} {'> domain':>9s} {'NaN':>4s}")
    for method, summary in table.items():
        near = 100 * summary.near_zero / summary.boxes if summary.boxes else float("nan")
        click.echo(f"{method:8s} {100 * summary.value:8.2f} {summary.boxes:6d} {near:12.1f} "
                   f"{summary.over_domain:9d} {summary.nan_boxes:4d}")
