"""How IBM's Estimator turns its options into each pub's shots, and the metadata that reports them.

The rules are those IBM documents on the options the client sends (``ibm_quantum_schemas``'
estimator ``v0.1`` models, which the params are validated against): a pub's shots come from its
precision, else ``default_shots``, else ``default_precision``, as ``ceil(1/precision**2)``; with
twirling on (by default at resilience levels 1 and 2, which twirl measurements) they are split into
randomizations, and the product of ``num_randomizations`` and ``shots_per_randomization`` is what
runs, taking precedence over ``default_shots``. Metadata follows the schema's result models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ibm_quantum_schemas.estimator.version_0_1 import (
    DynamicalDecouplingMetadataModel,
    OptionsModel,
    ParamsModel,
    PrimitiveResultMetadataModel,
    PrimitiveResultResilienceMetadataModel,
    PubResultMetadataModel,
    PubResultResilienceMetadataModel,
    TwirlingMetadataModel,
)

# Shots per randomization with both twirling settings "auto": fixed with PEC, else at least this.
AUTO_SHOTS_PER_RANDOMIZATION = 64
AUTO_RANDOMIZATIONS = 32


@dataclass(frozen=True)
class PubPlan:
    """What one pub runs: its shots, in how many randomizations (None untwirled), and its target."""

    shots: int
    num_randomizations: int | None
    target_precision: float


@dataclass(frozen=True)
class EstimatorSettings:
    """An Estimator job's options as IBM's server resolves them at its resilience level."""

    options: OptionsModel
    resilience_level: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> EstimatorSettings:
        """The settings of a job's raw JSON ``params``; raises pydantic's ``ValidationError``.

        The pubs are checked elsewhere (they arrive encoded); everything else is held to IBM's schema.
        """
        model = ParamsModel.model_validate({**params, "pubs": []})
        return cls(model.options, model.resilience_level)

    def _by_level(self, value: bool | None, from_level: int) -> bool:
        return value if value is not None else self.resilience_level >= from_level

    @property
    def enable_gates(self) -> bool:
        return self._by_level(self.options.twirling.enable_gates, 2)

    @property
    def enable_measure(self) -> bool:
        return self._by_level(self.options.twirling.enable_measure, 1)

    @property
    def twirled(self) -> bool:
        return self.enable_gates or self.enable_measure or self.options.resilience.pec_mitigation

    def plan(self, precision: float | None) -> PubPlan:
        """A pub's shots and randomizations, given its own precision (None: the defaults')."""
        default_shots = self.options.default_shots
        if precision is None and default_shots is not None:
            shots, target = default_shots, 1 / math.sqrt(default_shots)
        else:
            target = precision if precision is not None else self.options.default_precision
            shots = math.ceil(1.0 / target**2)
        if not self.twirled:
            return PubPlan(shots, None, target)
        randomizations = self.options.twirling.num_randomizations
        per_randomization = self.options.twirling.shots_per_randomization
        if per_randomization == "auto" and randomizations == "auto":
            per_randomization = (
                AUTO_SHOTS_PER_RANDOMIZATION
                if self.options.resilience.pec_mitigation
                else max(AUTO_SHOTS_PER_RANDOMIZATION, math.ceil(shots / AUTO_RANDOMIZATIONS))
            )
        if randomizations == "auto":
            assert per_randomization != "auto"
            randomizations = math.ceil(shots / per_randomization)
        elif per_randomization == "auto":
            per_randomization = math.ceil(shots / randomizations)
        return PubPlan(randomizations * per_randomization, randomizations, target)

    def pub_metadata(self, plan: PubPlan, circuit_metadata: dict[str, Any]) -> dict[str, Any]:
        model = PubResultMetadataModel(
            circuit_metadata=circuit_metadata,
            target_precision=plan.target_precision,
            shots=plan.shots,
            num_randomizations=plan.num_randomizations,
            resilience=PubResultResilienceMetadataModel(),
        )
        metadata: dict[str, Any] = model.model_dump(exclude_none=True)
        return metadata

    def result_metadata(self) -> dict[str, Any]:
        """The twirling, dynamical decoupling and mitigation settings the options resolve to."""
        twirling = self.options.twirling
        resilience = self.options.resilience
        decoupling = self.options.dynamical_decoupling
        model = PrimitiveResultMetadataModel(
            dynamical_decoupling=DynamicalDecouplingMetadataModel(
                enable=decoupling.enable,
                sequence_type=decoupling.sequence_type,
                extra_slack_distribution=decoupling.extra_slack_distribution,
                scheduling_method=decoupling.scheduling_method,
            ),
            twirling=TwirlingMetadataModel(
                enable_gates=self.enable_gates,
                enable_measure=self.enable_measure,
                num_randomizations=twirling.num_randomizations,
                shots_per_randomization=twirling.shots_per_randomization,
                strategy=twirling.strategy,
            ),
            resilience=PrimitiveResultResilienceMetadataModel(
                measure_mitigation=self._by_level(resilience.measure_mitigation, 1),
                zne_mitigation=self._by_level(resilience.zne_mitigation, 2),
                pec_mitigation=resilience.pec_mitigation,
            ),
        )
        metadata: dict[str, Any] = model.model_dump(exclude_none=True)
        return metadata
