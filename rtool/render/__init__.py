"""rtool's own differentiable mesh renderer (semantic spec §2-§3): meshes (OBJ, ShapeNet layout, procedural)
and a `Renderer` whose images are differentiable in the camera angles."""
from rtool.render.mesh import Mesh, normalize_vertices
from rtool.render.obj import load_obj
from rtool.render.procedural import PROCEDURAL_MESHES, procedural_mesh
from rtool.render.renderer import Renderer
from rtool.render.shapenet import (SEMANTIC_CLASSES, SemanticClass, load_shapenet, model_ids, semantic_class,
                                   shapenet_mesh_path)

__all__ = ["Mesh", "PROCEDURAL_MESHES", "Renderer", "SEMANTIC_CLASSES", "SemanticClass", "load_obj", "load_shapenet",
           "model_ids", "normalize_vertices", "procedural_mesh", "semantic_class", "shapenet_mesh_path"]
