"""Config of the data refinery: builders of generation-0 data and the quality filters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RefineryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    contamination_share: float = Field(0.2, ge=0, le=1, description="contaminated arm: share of paraphrased human answers.")
