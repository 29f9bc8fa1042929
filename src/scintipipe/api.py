"""The plugin API: the one module a scintipipe plugin imports from.

Everything a third-party plugin needs is here, under a name that stays when the code
behind it moves: the ``hookimpl`` marker, the register objects the registration hooks
receive, the errors a stage raises, scans and bundles, the bases of MONAI transforms, and
the simulator's building blocks for a new task. A shipped plugin imports nothing else from
``scintipipe`` (``tests/test_api.py`` checks), and anything not in ``__all__`` may change
without notice::

    from scintipipe.api import ScanError, hookimpl, make_scan

Importing this module is cheap: each name is imported from its home module on first use
(PEP 562), so ``from scintipipe.api import hookimpl`` loads neither PyTorch nor MONAI
and ``scintipipe --help`` stays fast with plugins installed. Import a heavy name (``Bundle``,
``ArrayTransformd``, the training helpers) inside the function that needs it when your
plugin module should stay light too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scintipipe.bundle import Bundle, resolve_bundle
    from scintipipe.bundle_writer import write_bundle
    from scintipipe.case import Case, Scan, source_file, source_view
    from scintipipe.context import RunContext
    from scintipipe.errors import NotAnImage, ScanError, ScintipipeError
    from scintipipe.evaluation.delong import delong_auc_ci, delong_test
    from scintipipe.evaluation.plots import plot_roc_comparison
    from scintipipe.evaluation.resampling import repeated_stratified_splits
    from scintipipe.gate.refusal import Refusal
    from scintipipe.hookspecs import hookimpl
    from scintipipe.networks.registry import NetworkSpec, build_network
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles
    from scintipipe.registry import (
        Alternative,
        CenterRegister,
        CommandRegister,
        ExplainerRegister,
        NetworkRegister,
        OptionRegister,
        PluginOption,
        RecipeRegister,
        SegmenterRegister,
        ServedModelRegister,
        SimulatorRegister,
        Task,
        TaskRegister,
        TrainingSourceContext,
        TrainingSourceRegister,
        parse_class_mix,
    )
    from scintipipe.scan import make_scan
    from scintipipe.server.errors import BadRequest
    from scintipipe.server.served import InferResult, ServeContext, ServedModel
    from scintipipe.simulate.anatomy import Footprint, Grid, body_thickness, head_thickness
    from scintipipe.simulate.camera import I131_HE, TC99M_LEHR, CameraProfile, acquire
    from scintipipe.simulate.case import SimulatedCase, TaskSimulator
    from scintipipe.simulate.centers import CENTERS, CenterProfile, get_center
    from scintipipe.simulate.dicom_io import VIEW_CODES, nm_dataset, write_dicom
    from scintipipe.simulate.findings import (
        Findings,
        draw_findings,
        make_findings,
        simulate_findings_view,
        simulate_patient_view,
        with_contrast,
    )
    from scintipipe.simulate.head_neck import Gland, HeadNeck, head_neck_footprints, sample_head_neck
    from scintipipe.simulate.neck import NeckActivities, log_uniform, place_grid, simulate_neck_view
    from scintipipe.simulate.normal import NORMAL_MIN_CONTRAST, draw_normal_findings, normal_rule
    from scintipipe.simulate.nuisance import Nuisance, sample_nuisance
    from scintipipe.simulate.preview import contact_sheet, display_image
    from scintipipe.simulate.scene import Scene
    from scintipipe.simulate.thyroid import (
        Lobe,
        Nodule,
        ThyroidShape,
        draw_thyroid,
        point_in_lobe,
        sample_thyroid_shape,
    )
    from scintipipe.simulate.uptake4 import draw_uptake4_findings
    from scintipipe.simulate.uptake4 import meets_rule as uptake4_rule
    from scintipipe.simulate.writer import assign_labels, case_identity, case_rng
    from scintipipe.testing import run_cli
    from scintipipe.training.data import ExtraTraining, read_labels
    from scintipipe.training.evaluate import classify_labelled, resampling_experiment
    from scintipipe.training.loop import predict
    from scintipipe.training.recipe import load_recipe
    from scintipipe.training.train import build_network as build_recipe_network
    from scintipipe.training.train import train_bundle
    from scintipipe.transforms.dictionary import ArrayTransform, ArrayTransformd

#: every public name and its home, ``"module:attribute"``, imported on first use
_EXPORTS: dict[str, str] = {
    # hooks, registration and plugin loading
    "hookimpl": "scintipipe.hookspecs:hookimpl",
    "TaskRegister": "scintipipe.registry:TaskRegister",
    "CommandRegister": "scintipipe.registry:CommandRegister",
    "SimulatorRegister": "scintipipe.registry:SimulatorRegister",
    "NetworkRegister": "scintipipe.registry:NetworkRegister",
    "CenterRegister": "scintipipe.registry:CenterRegister",
    "RecipeRegister": "scintipipe.registry:RecipeRegister",
    "Task": "scintipipe.registry:Task",
    "parse_class_mix": "scintipipe.registry:parse_class_mix",
    "make_plugin_manager": "scintipipe.plugins:make_plugin_manager",
    # options, named alternatives and the run context
    "RunContext": "scintipipe.context:RunContext",
    # what flows through the stage hooks
    "Scan": "scintipipe.case:Scan",
    "Case": "scintipipe.case:Case",
    "source_file": "scintipipe.case:source_file",
    "source_view": "scintipipe.case:source_view",
    "OptionRegister": "scintipipe.registry:OptionRegister",
    "TrainingSourceRegister": "scintipipe.registry:TrainingSourceRegister",
    "TrainingSourceContext": "scintipipe.registry:TrainingSourceContext",
    "PluginOption": "scintipipe.registry:PluginOption",
    "SegmenterRegister": "scintipipe.registry:SegmenterRegister",
    "ExplainerRegister": "scintipipe.registry:ExplainerRegister",
    "Alternative": "scintipipe.registry:Alternative",
    # errors and refusals
    "ScintipipeError": "scintipipe.errors:ScintipipeError",
    "ScanError": "scintipipe.errors:ScanError",
    "NotAnImage": "scintipipe.errors:NotAnImage",
    "Refusal": "scintipipe.gate.refusal:Refusal",
    # scans, bundles, transforms and networks
    "make_scan": "scintipipe.scan:make_scan",
    "Bundle": "scintipipe.bundle:Bundle",
    "resolve_bundle": "scintipipe.bundle:resolve_bundle",
    "tasks_and_bundles": "scintipipe.plugins:tasks_and_bundles",
    "write_bundle": "scintipipe.bundle_writer:write_bundle",
    "ArrayTransform": "scintipipe.transforms.dictionary:ArrayTransform",
    "ArrayTransformd": "scintipipe.transforms.dictionary:ArrayTransformd",
    "build_network": "scintipipe.networks.registry:build_network",
    "NetworkSpec": "scintipipe.networks.registry:NetworkSpec",
    # simulator: the task simulator and its case
    "TaskSimulator": "scintipipe.simulate.case:TaskSimulator",
    "SimulatedCase": "scintipipe.simulate.case:SimulatedCase",
    # simulator: centres and cameras
    "CENTERS": "scintipipe.simulate.centers:CENTERS",
    "CenterProfile": "scintipipe.simulate.centers:CenterProfile",
    "get_center": "scintipipe.simulate.centers:get_center",
    "CameraProfile": "scintipipe.simulate.camera:CameraProfile",
    "I131_HE": "scintipipe.simulate.camera:I131_HE",
    "TC99M_LEHR": "scintipipe.simulate.camera:TC99M_LEHR",
    "acquire": "scintipipe.simulate.camera:acquire",
    # simulator: anatomy and scene
    "Footprint": "scintipipe.simulate.anatomy:Footprint",
    "Grid": "scintipipe.simulate.anatomy:Grid",
    "body_thickness": "scintipipe.simulate.anatomy:body_thickness",
    "head_thickness": "scintipipe.simulate.anatomy:head_thickness",
    "Gland": "scintipipe.simulate.head_neck:Gland",
    "HeadNeck": "scintipipe.simulate.head_neck:HeadNeck",
    "head_neck_footprints": "scintipipe.simulate.head_neck:head_neck_footprints",
    "sample_head_neck": "scintipipe.simulate.head_neck:sample_head_neck",
    "Lobe": "scintipipe.simulate.thyroid:Lobe",
    "Nodule": "scintipipe.simulate.thyroid:Nodule",
    "ThyroidShape": "scintipipe.simulate.thyroid:ThyroidShape",
    "draw_thyroid": "scintipipe.simulate.thyroid:draw_thyroid",
    "point_in_lobe": "scintipipe.simulate.thyroid:point_in_lobe",
    "sample_thyroid_shape": "scintipipe.simulate.thyroid:sample_thyroid_shape",
    "Scene": "scintipipe.simulate.scene:Scene",
    # simulator: a neck view, its nuisance draws and its findings
    "NeckActivities": "scintipipe.simulate.neck:NeckActivities",
    "log_uniform": "scintipipe.simulate.neck:log_uniform",
    "place_grid": "scintipipe.simulate.neck:place_grid",
    "simulate_neck_view": "scintipipe.simulate.neck:simulate_neck_view",
    "Nuisance": "scintipipe.simulate.nuisance:Nuisance",
    "sample_nuisance": "scintipipe.simulate.nuisance:sample_nuisance",
    "Findings": "scintipipe.simulate.findings:Findings",
    "draw_findings": "scintipipe.simulate.findings:draw_findings",
    "make_findings": "scintipipe.simulate.findings:make_findings",
    "simulate_findings_view": "scintipipe.simulate.findings:simulate_findings_view",
    "simulate_patient_view": "scintipipe.simulate.findings:simulate_patient_view",
    "with_contrast": "scintipipe.simulate.findings:with_contrast",
    "NORMAL_MIN_CONTRAST": "scintipipe.simulate.normal:NORMAL_MIN_CONTRAST",
    "draw_normal_findings": "scintipipe.simulate.normal:draw_normal_findings",
    "normal_rule": "scintipipe.simulate.normal:normal_rule",
    "draw_uptake4_findings": "scintipipe.simulate.uptake4:draw_uptake4_findings",
    "uptake4_rule": "scintipipe.simulate.uptake4:meets_rule",
    # simulator: output files
    "VIEW_CODES": "scintipipe.simulate.dicom_io:VIEW_CODES",
    "nm_dataset": "scintipipe.simulate.dicom_io:nm_dataset",
    "write_dicom": "scintipipe.simulate.dicom_io:write_dicom",
    "assign_labels": "scintipipe.simulate.writer:assign_labels",
    "case_identity": "scintipipe.simulate.writer:case_identity",
    "case_rng": "scintipipe.simulate.writer:case_rng",
    "display_image": "scintipipe.simulate.preview:display_image",
    "contact_sheet": "scintipipe.simulate.preview:contact_sheet",
    # training and evaluation (a plugin's benchmarks)
    "load_recipe": "scintipipe.training.recipe:load_recipe",
    "build_recipe_network": "scintipipe.training.train:build_network",
    "read_labels": "scintipipe.training.data:read_labels",
    "ExtraTraining": "scintipipe.training.data:ExtraTraining",
    "train_bundle": "scintipipe.training.train:train_bundle",
    "predict": "scintipipe.training.loop:predict",
    "classify_labelled": "scintipipe.training.evaluate:classify_labelled",
    "resampling_experiment": "scintipipe.training.evaluate:resampling_experiment",
    "repeated_stratified_splits": "scintipipe.evaluation.resampling:repeated_stratified_splits",
    "delong_auc_ci": "scintipipe.evaluation.delong:delong_auc_ci",
    "delong_test": "scintipipe.evaluation.delong:delong_test",
    "plot_roc_comparison": "scintipipe.evaluation.plots:plot_roc_comparison",
    # testing
    "run_cli": "scintipipe.testing:run_cli",
    # the server's models (scintipipe serve; light imports, the server loads when it runs)
    "ServedModelRegister": "scintipipe.registry:ServedModelRegister",
    "ServedModel": "scintipipe.server.served:ServedModel",
    "ServeContext": "scintipipe.server.served:ServeContext",
    "InferResult": "scintipipe.server.served:InferResult",
    "BadRequest": "scintipipe.server.errors:BadRequest",
}

__all__ = [
    # hooks, registration and plugin loading
    "hookimpl",
    "TaskRegister",
    "CommandRegister",
    "SimulatorRegister",
    "NetworkRegister",
    "CenterRegister",
    "RecipeRegister",
    "Task",
    "parse_class_mix",
    "make_plugin_manager",
    # options, named alternatives and the run context
    "RunContext",
    # what flows through the stage hooks
    "Scan",
    "Case",
    "source_file",
    "source_view",
    "OptionRegister",
    "TrainingSourceRegister",
    "TrainingSourceContext",
    "PluginOption",
    "SegmenterRegister",
    "ExplainerRegister",
    "Alternative",
    # errors and refusals
    "ScintipipeError",
    "ScanError",
    "NotAnImage",
    "Refusal",
    # scans, bundles, transforms and networks
    "make_scan",
    "Bundle",
    "resolve_bundle",
    "tasks_and_bundles",
    "write_bundle",
    "ArrayTransform",
    "ArrayTransformd",
    "build_network",
    "NetworkSpec",
    # simulator: the task simulator and its case
    "TaskSimulator",
    "SimulatedCase",
    # simulator: centres and cameras
    "CENTERS",
    "CenterProfile",
    "get_center",
    "CameraProfile",
    "I131_HE",
    "TC99M_LEHR",
    "acquire",
    # simulator: anatomy and scene
    "Footprint",
    "Grid",
    "body_thickness",
    "head_thickness",
    "Gland",
    "HeadNeck",
    "head_neck_footprints",
    "sample_head_neck",
    "Lobe",
    "Nodule",
    "ThyroidShape",
    "draw_thyroid",
    "point_in_lobe",
    "sample_thyroid_shape",
    "Scene",
    # simulator: a neck view, its nuisance draws and its findings
    "NeckActivities",
    "log_uniform",
    "place_grid",
    "simulate_neck_view",
    "Nuisance",
    "sample_nuisance",
    "Findings",
    "draw_findings",
    "make_findings",
    "simulate_findings_view",
    "simulate_patient_view",
    "with_contrast",
    "NORMAL_MIN_CONTRAST",
    "draw_normal_findings",
    "normal_rule",
    "draw_uptake4_findings",
    "uptake4_rule",
    # simulator: output files
    "VIEW_CODES",
    "nm_dataset",
    "write_dicom",
    "assign_labels",
    "case_identity",
    "case_rng",
    "display_image",
    "contact_sheet",
    # training and evaluation (a plugin's benchmarks)
    "load_recipe",
    "build_recipe_network",
    "read_labels",
    "ExtraTraining",
    "train_bundle",
    "predict",
    "classify_labelled",
    "resampling_experiment",
    "repeated_stratified_splits",
    "delong_auc_ci",
    "delong_test",
    "plot_roc_comparison",
    # testing
    "run_cli",
    # the server's models (scintipipe serve; light imports, the server loads when it runs)
    "ServedModelRegister",
    "ServedModel",
    "ServeContext",
    "InferResult",
    "BadRequest",
]


def __getattr__(name: str) -> Any:
    """Import ``name`` from its home module on first use and keep it here."""
    try:
        target = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
