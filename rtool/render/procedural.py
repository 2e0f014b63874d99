"""Procedural meshes generated in code: the embedded defaults and the test shapes (no files needed)."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rtool.errors import UsageError
from rtool.render.mesh import Mesh


def _mesh(vertices, faces, name: str) -> Mesh:
    return Mesh(torch.as_tensor(vertices, dtype=torch.float64), torch.as_tensor(faces, dtype=torch.long), name)


def revolve(profile: list[tuple[float, float]], segments: int, name: str) -> Mesh:
    """Surface of revolution about +Y of a (radius, height) polyline; radius-0 points become one pole vertex."""
    vertices, rings = [], []
    for radius, height in profile:
        if radius == 0:
            rings.append([len(vertices)] * segments)
            vertices.append((0.0, height, 0.0))
            continue
        ring = []
        for k in range(segments):
            angle = 2 * math.pi * k / segments
            ring.append(len(vertices))
            vertices.append((radius * math.cos(angle), height, radius * math.sin(angle)))
        rings.append(ring)
    faces = []
    for lower, upper in zip(rings, rings[1:]):
        for k in range(segments):
            a, b = lower[k], lower[(k + 1) % segments]
            c, d = upper[(k + 1) % segments], upper[k]
            if a != b:
                faces.append((a, b, c))
            if c != d:
                faces.append((a, c, d))
    faces = [f for f in faces if len(set(f)) == 3]
    return _mesh(vertices, faces, name)


def box(center=(0.0, 0.0, 0.0), size=(2.0, 2.0, 2.0), name: str = "cube") -> Mesh:
    cx, cy, cz = center
    sx, sy, sz = (s / 2 for s in size)
    vertices = [(cx + x * sx, cy + y * sy, cz + z * sz) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
    # corner id = 4*(x>0) + 2*(y>0) + (z>0); two triangles per side, wound outward
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [f for a, b, c, d in quads for f in ((a, b, c), (a, c, d))]
    return _mesh(vertices, faces, name)


def combine(parts: list[Mesh], name: str) -> Mesh:
    vertices, faces, offset = [], [], 0
    for part in parts:
        vertices.append(part.vertices)
        faces.append(part.faces + offset)
        offset += part.vertices.shape[0]
    return Mesh(torch.cat(vertices), torch.cat(faces), name)


def torus(segments: int = 48, rings: int = 16, major: float = 1.0, minor: float = 0.35, name: str = "torus",
          center=(0.0, 0.0, 0.0), axis: str = "y") -> Mesh:
    vertices = []
    for i in range(segments):
        u = 2 * math.pi * i / segments
        for j in range(rings):
            w = 2 * math.pi * j / rings
            r = major + minor * math.cos(w)
            a, b, h = r * math.cos(u), r * math.sin(u), minor * math.sin(w)
            x, y, z = (a, h, b) if axis == "y" else (a, b, h)
            vertices.append((x + center[0], y + center[1], z + center[2]))
    faces = []
    for i in range(segments):
        for j in range(rings):
            a = i * rings + j
            b = ((i + 1) % segments) * rings + j
            c = ((i + 1) % segments) * rings + (j + 1) % rings
            d = i * rings + (j + 1) % rings
            faces += [(a, b, c), (a, c, d)]
    return _mesh(vertices, faces, name)


def sphere(segments: int = 32, name: str = "sphere") -> Mesh:
    rings = max(segments // 2, 2)
    profile = [(math.sin(math.pi * k / rings), -math.cos(math.pi * k / rings)) for k in range(rings + 1)]
    profile[0], profile[-1] = (0.0, -1.0), (0.0, 1.0)
    return revolve(profile, segments, name)


def _polyhedron(vertices, faces, name: str) -> Mesh:
    return _mesh(vertices, faces, name)


def tetrahedron() -> Mesh:
    v = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]
    return _polyhedron(v, [(0, 1, 2), (0, 3, 1), (0, 2, 3), (1, 3, 2)], "tetrahedron")


def octahedron() -> Mesh:
    v = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    f = [(0, 2, 4), (4, 2, 1), (1, 2, 5), (5, 2, 0), (0, 4, 3), (4, 1, 3), (1, 5, 3), (5, 0, 3)]
    return _polyhedron(v, f, "octahedron")


def icosahedron() -> Mesh:
    p = (1 + 5 ** 0.5) / 2
    v = [(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
         (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
         (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
         (8, 6, 7), (9, 8, 1)]
    return _polyhedron(v, f, "icosahedron")


def pyramid() -> Mesh:
    v = [(-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1), (0, 1, 0)]
    f = [(0, 1, 2), (0, 2, 3), (0, 4, 1), (1, 4, 2), (2, 4, 3), (3, 4, 0)]
    return _polyhedron(v, f, "pyramid")


def prism() -> Mesh:
    angles = [math.pi / 2 + 2 * math.pi * k / 3 for k in range(3)]
    tri = [(math.cos(a), math.sin(a)) for a in angles]
    v = [(x, y, -1.5) for x, y in tri] + [(x, y, 1.5) for x, y in tri]
    f = [(0, 2, 1), (3, 4, 5), (0, 1, 4), (0, 4, 3), (1, 2, 5), (1, 5, 4), (2, 0, 3), (2, 3, 5)]
    return _polyhedron(v, f, "prism")


def capsule(segments: int = 32) -> Mesh:
    quarter = 8
    steps = [math.pi / 2 * k / quarter for k in range(quarter + 1)]
    bottom = [(math.sin(a), -1.0 - math.cos(a)) for a in steps]
    top = [(math.cos(a), 1.0 + math.sin(a)) for a in steps]
    profile = [(0.0, -2.0)] + bottom[1:] + top[:-1] + [(0.0, 2.0)]
    return revolve(profile, segments, "capsule")


def vase(segments: int = 40) -> Mesh:
    heights = [-1 + 2 * k / 24 for k in range(25)]
    profile = [(0.0, -1.0)] + [(0.45 + 0.35 * math.sin(2.6 * (h + 1)) * (1 - 0.3 * (h + 1)), h) for h in heights]
    return revolve(profile + [(0.0, 1.0)], segments, "vase")


def bottle(segments: int = 32) -> Mesh:
    profile = [(0.0, -1.0), (0.4, -1.0), (0.42, -0.95), (0.42, 0.2), (0.35, 0.4), (0.16, 0.6), (0.14, 0.95),
               (0.16, 1.0), (0.0, 1.0)]
    return revolve(profile, segments, "bottle")


def cup(segments: int = 40) -> Mesh:
    profile = [(0.0, -1.0), (0.7, -1.0), (1.0, 1.0), (0.92, 1.0), (0.64, -0.88), (0.0, -0.88)]
    return revolve(profile, segments, "cup")


def mug(segments: int = 40) -> Mesh:
    body = revolve([(0.0, -1.0), (0.8, -1.0), (0.8, 1.0), (0.72, 1.0), (0.72, -0.9), (0.0, -0.9)], segments, "body")
    handle = torus(24, 10, major=0.45, minor=0.1, center=(1.1, 0.0, 0.0), axis="z")
    return combine([body, handle], "mug")


def table() -> Mesh:
    top = box((0, 0.9, 0), (3.0, 0.2, 2.0))
    legs = [box((x, 0.0, z), (0.2, 1.6, 0.2)) for x in (-1.3, 1.3) for z in (-0.8, 0.8)]
    return combine([top, *legs], "table")


def chair() -> Mesh:
    seat = box((0, 0.0, 0), (1.2, 0.15, 1.2))
    back = box((0, 0.8, -0.55), (1.2, 1.5, 0.12))
    legs = [box((x, -0.6, z), (0.12, 1.2, 0.12)) for x in (-0.5, 0.5) for z in (-0.5, 0.5)]
    return combine([seat, back, *legs], "chair")


PROCEDURAL_BUILDERS: dict[str, Callable[..., Mesh]] = {
    "cube": lambda: box(),
    "sphere": sphere,
    "cylinder": lambda segments=32: revolve([(0.0, -1.0), (1.0, -1.0), (1.0, 1.0), (0.0, 1.0)], segments, "cylinder"),
    "cone": lambda segments=32: revolve([(0.0, -1.0), (1.0, -1.0), (0.0, 1.0)], segments, "cone"),
    "torus": torus,
    "tetrahedron": tetrahedron,
    "octahedron": octahedron,
    "icosahedron": icosahedron,
    "pyramid": pyramid,
    "prism": prism,
    "capsule": capsule,
    "vase": vase,
    "bottle": bottle,
    "cup": cup,
    "mug": mug,
    "table": table,
    "chair": chair,
}
PROCEDURAL_MESHES = tuple(PROCEDURAL_BUILDERS)


def procedural_mesh(name: str, normalize: bool = True, dtype: torch.dtype = torch.float32, **options) -> Mesh:
    """One of PROCEDURAL_MESHES, normalised like a loaded OBJ (longest side 2, centred) unless told not to.
    `options` reach the builder (e.g. sphere(segments=...), torus(segments=..., rings=...))."""
    if name not in PROCEDURAL_BUILDERS:
        raise UsageError(f"unknown procedural mesh {name!r}; expected one of {', '.join(PROCEDURAL_MESHES)}")
    mesh = PROCEDURAL_BUILDERS[name](**options)
    mesh = Mesh(mesh.vertices, mesh.faces, name)
    if normalize:
        mesh = mesh.normalized()
    return mesh.to(dtype=dtype)
