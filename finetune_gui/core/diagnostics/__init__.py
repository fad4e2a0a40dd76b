"""Diagnoses of a training run, in plain words, with remedies one config change away (no Qt).

The loop's `DiagnosticsHook` keeps a `RunRecord` (logged steps, cheap probes on logged steps, epochs and the
data's facts); the checks read that record alone, so a finished run can be diagnosed again from its
diagnostics.json after an upgrade.
"""

from finetune_gui.core.diagnostics.findings import SEVERITIES, Finding, Remedy, worst_first

__all__ = ["SEVERITIES", "Finding", "Remedy", "worst_first"]
