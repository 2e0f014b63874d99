"""`rtool detect`: find the predictions to distrust (layer conductance + label change rate of mutants)."""
from rtool.detect.conductance import (INTEGRATION_METHODS, METHODS, Conductance, ConductanceSettings,
                                      closed_form_head, layer_conductance)

__all__ = ["INTEGRATION_METHODS", "METHODS", "Conductance", "ConductanceSettings", "closed_form_head",
           "layer_conductance"]
