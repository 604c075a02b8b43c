"""Fault injection: per-endpoint latency and failure odds, drawn from one seeded random source.

One draw per request decides at most one failure, so a fixed seed and a fixed request sequence
always give the same faults.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENDPOINTS = ("token", "get", "append", "delete", "pause", "unpause")

Probability = Field(default=0.0, ge=0.0, le=1.0)


class Fault(StrEnum):
    ERROR_500 = "500"
    ERROR_502 = "502"
    ERROR_503 = "503"
    HANG = "hang"
    RESET = "reset"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a fault name, not a secret
    BID_IGNORED = "bid_ignored"


class LatencySpec(BaseModel):
    """Added delay before answering. `constant`: `ms`; `uniform`: between `min_ms` and `max_ms`;
    `exponential`: `min_ms` plus an exponential tail of mean `ms`, capped at `max_ms` when set."""

    model_config = ConfigDict(extra="forbid")

    distribution: Literal["none", "constant", "uniform", "exponential"] = "none"
    ms: float = Field(default=0.0, ge=0)
    min_ms: float = Field(default=0.0, ge=0)
    max_ms: float = Field(default=0.0, ge=0)


class FaultSpec(BaseModel):
    """Failure probabilities of one endpoint. `p_token_expired` applies to the five product
    endpoints (the presented token dies early: 401 `authorization-token-expired`), `p_bid_ignored`
    to append only (204, new products added, bids of existing products left unchanged)."""

    model_config = ConfigDict(extra="forbid")

    latency: LatencySpec = Field(default_factory=LatencySpec)
    p_500: float = Probability
    p_502: float = Probability
    p_503: float = Probability
    p_hang: float = Probability
    p_reset: float = Probability
    p_token_expired: float = Probability
    p_bid_ignored: float = Probability

    def _weights(self) -> tuple[tuple[Fault, float], ...]:
        return (
            (Fault.ERROR_500, self.p_500),
            (Fault.ERROR_502, self.p_502),
            (Fault.ERROR_503, self.p_503),
            (Fault.HANG, self.p_hang),
            (Fault.RESET, self.p_reset),
            (Fault.TOKEN_EXPIRED, self.p_token_expired),
            (Fault.BID_IGNORED, self.p_bid_ignored),
        )

    def is_quiet(self) -> bool:
        return self.latency.distribution == "none" and not any(p for _, p in self._weights())


class FaultSource:
    """The seeded random source every fault is drawn from."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def draw(self, spec: FaultSpec) -> tuple[float, Fault | None]:
        """Latency in seconds and the failure (or None) for one request."""
        if spec.is_quiet():
            return 0.0, None
        return self._latency(spec.latency), self._failure(spec)

    def _latency(self, spec: LatencySpec) -> float:
        if spec.distribution == "none":
            return 0.0
        if spec.distribution == "constant":
            ms = spec.ms
        elif spec.distribution == "uniform":
            ms = self._rng.uniform(spec.min_ms, max(spec.min_ms, spec.max_ms))
        else:
            ms = spec.min_ms + (self._rng.expovariate(1.0 / spec.ms) if spec.ms else 0.0)
            if spec.max_ms:
                ms = min(ms, spec.max_ms)
        return ms / 1000.0

    def _failure(self, spec: FaultSpec) -> Fault | None:
        roll = self._rng.random()
        for fault, probability in spec._weights():
            if roll < probability:
                return fault
            roll -= probability
        return None
