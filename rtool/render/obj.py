"""Wavefront OBJ reader: `v` and `f` records only (polygons fan-triangulated), everything else ignored."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from rtool.errors import UsageError
from rtool.render.mesh import Mesh


def _vertex_id(token: str, count: int, where: str) -> int:
    """0-based id of one `f` corner (`i`, `i/j`, `i//k`, `i/j/k`); negative ids count back from the last
    vertex defined so far."""
    head = token.split("/", 1)[0]
    try:
        index = int(head)
    except ValueError:
        raise UsageError(f"{where}: face corner {token!r} is not a vertex index") from None
    if index == 0:
        raise UsageError(f"{where}: face corner {token!r}: OBJ indices start at 1")
    if index < 0:
        index = count + index
        if index < 0:
            raise UsageError(f"{where}: face corner {token!r} refers before the first vertex ({count} defined so far)")
        return index
    return index - 1


def load_obj(path: str | os.PathLike, normalize: bool = True, dtype: torch.dtype = torch.float32) -> Mesh:
    """Reads `path` into a Mesh; with `normalize` (the default) as the semantic spec §2 prescribes.

    A corrupt, empty or non-finite file raises UsageError with one line naming the file and line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the OBJ file ({error.strerror or error})") from None
    vertices: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    face_lines: list[int] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{where}: not text (an OBJ file is UTF-8/ASCII)") from None
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "v":
            if len(parts) < 4:
                raise UsageError(f"{where}: vertex needs 3 coordinates, got {len(parts) - 1}")
            try:
                xyz = tuple(float(p) for p in parts[1:4])
            except ValueError:
                raise UsageError(f"{where}: vertex coordinates {' '.join(parts[1:4])!r} are not numbers") from None
            if not all(math.isfinite(c) for c in xyz):
                raise UsageError(f"{where}: vertex {' '.join(parts[1:4])!r} is not finite")
            vertices.append(xyz)
        elif parts[0] == "f":
            if len(parts) < 4:
                raise UsageError(f"{where}: face needs at least 3 corners, got {len(parts) - 1}")
            ids = [_vertex_id(token, len(vertices), where) for token in parts[1:]]
            for k in range(1, len(ids) - 1):  # fan: (v0, v_k, v_k+1)
                faces.append((ids[0], ids[k], ids[k + 1]))
                face_lines.append(number)
    if not vertices:
        raise UsageError(f"{path}:{len(data.splitlines())}: no vertices ('v' records) in the OBJ file")
    if not faces:
        raise UsageError(f"{path}:{len(data.splitlines())}: no faces ('f' records) in the OBJ file")
    faces_t = torch.tensor(faces, dtype=torch.long)
    too_big = faces_t.max(dim=1).values >= len(vertices)
    if too_big.any():
        first = int(torch.nonzero(too_big)[0])
        raise UsageError(f"{path}:{face_lines[first]}: face refers to vertex {int(faces_t[first].max()) + 1}, "
                         f"but the file defines {len(vertices)} vertices")
    # ShapeNet names every file model_normalized.obj: the model id is two folders up.
    name = path.parent.parent.name if path.name == "model_normalized.obj" else path.stem
    mesh = Mesh(torch.tensor(vertices, dtype=torch.float64), faces_t, name)
    if normalize:
        mesh = mesh.normalized()
    return mesh.to(dtype=dtype)
