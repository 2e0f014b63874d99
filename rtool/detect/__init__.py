"""`rtool detect`: find the predictions to distrust (layer conductance + label change rate of mutants)."""
from rtool.detect.conductance import (INTEGRATION_METHODS, METHODS, Conductance, ConductanceSettings,
                                      closed_form_head, layer_conductance)
from rtool.detect.detector import (COMBINED_SETTINGS, DetectorSettings, Metrics, MLPDetector, aurc, baseline_scores,
                                   detection_metrics, detector_scores, equal_recall_threshold, fit_detector)
from rtool.detect.evaluation import BASELINES, DETECTORS, DetectionResult, evaluate_detectors
from rtool.detect.experiment import DetectExperiment, DetectSettings, run
from rtool.detect.export import DeployedDetector, export_detector
from rtool.detect.features import Features, extract_features
from rtool.detect.mutation import (OPERATORS, LabelChangeRate, MutantSet, MutationSettings, accepted_mutants,
                                   label_change_rate, mutant_parameters)

__all__ = ["BASELINES", "COMBINED_SETTINGS", "DETECTORS", "INTEGRATION_METHODS", "METHODS", "OPERATORS",
           "Conductance", "ConductanceSettings", "DetectExperiment", "DetectSettings", "DetectionResult", "DeployedDetector", "DetectorSettings", "Features",
           "LabelChangeRate", "MLPDetector", "Metrics", "MutantSet", "MutationSettings", "accepted_mutants", "aurc",
           "baseline_scores", "closed_form_head", "detection_metrics", "detector_scores", "equal_recall_threshold",
           "evaluate_detectors", "export_detector", "extract_features", "fit_detector", "label_change_rate", "layer_conductance",
           "mutant_parameters", "run"]
