"""hone.envs.build: environments built from specs (the FTRL pipeline); see docs/tool-environments.md.

    from hone.envs.build import build, TemplateGenerator
    manifest = build(source, Path("out/bank"), seed=0, tasks_per_level=20)

`build` runs the six cached stages (decompose, document, integrate, tasks, scale, verify) and
writes a self-contained, pip-installable environment directory.
"""

from ._env import BuiltEnv
from ._generator import GenerationError, Generator
from ._inputs import load_source
from ._llm import LLMGenerator
from ._output import SPLITS, assign_splits, choose_heldout, slug
from ._pipeline import STAGES, abuild, build
from ._scale import VerifiedAtom, scale
from ._spec import (
    IR_VERSION,
    LEVELS,
    Atom,
    Backend,
    BuildManifest,
    BuiltTask,
    Call,
    Scenario,
    ScenarioDraft,
    SourceSpec,
    ToolDoc,
    canonical_json,
    state_digest,
)
from ._template import TemplateGenerator
from ._verify import render_answer

__all__ = [
    "IR_VERSION",
    "LEVELS",
    "SPLITS",
    "STAGES",
    "Atom",
    "Backend",
    "BuildManifest",
    "BuiltEnv",
    "BuiltTask",
    "Call",
    "GenerationError",
    "Generator",
    "LLMGenerator",
    "Scenario",
    "ScenarioDraft",
    "SourceSpec",
    "TemplateGenerator",
    "ToolDoc",
    "VerifiedAtom",
    "abuild",
    "assign_splits",
    "build",
    "canonical_json",
    "choose_heldout",
    "load_source",
    "render_answer",
    "scale",
    "slug",
    "state_digest",
]
