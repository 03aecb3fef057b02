"""Auto scaling: a pure, Knative-KPA-style decider for App Runner's AutoScalingConfiguration."""

from __future__ import annotations

from runyard.autoscale.decider import Decider, Decision, ScalingPolicy
from runyard.autoscale.windows import ConcurrencyWindow

__all__ = ["ConcurrencyWindow", "Decider", "Decision", "ScalingPolicy"]
