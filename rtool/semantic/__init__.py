"""`rtool semantic`: over which viewpoints of a rendered 3D object does a classifier stay right?
(Hamdi & Ghanem, "Towards Analyzing Semantic Robustness of Deep Neural Networks", arXiv 1904.04621)

f(u) = softmax probability of the true class for the view u = (azimuth, elevation) in degrees. Semantic maps
evaluate f on a grid; naive, OIR_B and OIR_W grow a robust box around a start point; SRVR is the mean box
volume over Vol(Ω). No printing, no file I/O here.

    from rtool.semantic import ViewScore, ViewPreprocess, semantic_map, robust_regions
    f = ViewScore(model, mesh, true_class=435, preprocess=ViewPreprocess.for_model("resnet50"))
    heat = semantic_map(f)                       # 34 x 120 grid
    result = robust_regions(f)                   # the four default start points, three methods
"""
from rtool.semantic.collection import ObjectMaps, ObjectSpec, object_maps, shapenet_objects
from rtool.semantic.default import SemanticDefault, SemanticDefaultRecipe, load_semantic_default
from rtool.semantic.maps import MapSettings, SemanticMap, average_map, map_dict, map_from_dict, semantic_map
from rtool.semantic.regions import (GRADIENTS, METHODS, START_POINTS_1D, START_POINTS_2D, OptimResult, OptimSettings,
                                    Region, box_corners, corner_matrix, naive_step, oir_b_step, oir_w_step,
                                    optim_dict, outer_box, robust_regions)
from rtool.semantic.space import DOMAIN_1D, DOMAIN_2D, FIXED_ELEVATION, check_points, domain
from rtool.semantic.srvr import SRVRSummary, regions_from_record, srvr, srvr_by_method, srvr_table
from rtool.semantic.views import ViewPreprocess, ViewScore

__all__ = [
    "DOMAIN_1D", "DOMAIN_2D", "FIXED_ELEVATION", "GRADIENTS", "METHODS", "START_POINTS_1D", "START_POINTS_2D",
    "MapSettings", "ObjectMaps", "ObjectSpec", "OptimResult", "OptimSettings", "Region", "SRVRSummary", "SemanticDefault", "SemanticDefaultRecipe",
    "SemanticMap", "ViewPreprocess", "load_semantic_default",
    "ViewScore", "average_map", "box_corners", "check_points", "corner_matrix", "domain", "map_dict", "map_from_dict",
    "naive_step", "object_maps", "oir_b_step", "oir_w_step", "optim_dict", "outer_box", "robust_regions", "semantic_map", "shapenet_objects", "srvr",
    "srvr_by_method", "srvr_table", "regions_from_record",
]
