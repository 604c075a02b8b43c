"""The simulator as the routes see it: everything mutable, held on the app under `SIM`."""

from __future__ import annotations

from aiohttp import web

from worker.simulator.config import SimConfig
from worker.simulator.faults import FaultSource
from worker.simulator.ratelimit import RateLimiter
from worker.simulator.requestlog import RequestLog
from worker.simulator.scenario import Scenario
from worker.simulator.state import SimState
from worker.simulator.tokens import TokenStore


class Simulator:
    """Everything mutable: loaded scenario, live state, config, log, tokens, limiter, faults."""

    def __init__(self, scenario: Scenario, seed: int, config: SimConfig) -> None:
        self.scenario = scenario
        self.seed = seed
        self.initial_config = config
        self.config = config
        self.tokens = TokenStore()
        self.state = SimState(scenario)
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.faults = FaultSource(seed)

    def reset(self, *, with_config: bool = False) -> None:
        """Back to the loaded scenario: state rebuilt, log and rate-limit windows cleared, fault
        source reseeded. Issued tokens stay valid (a running client need not notice)."""
        self.state = SimState(self.scenario)
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.faults = FaultSource(self.seed)
        if with_config:
            self.config = self.initial_config


SIM = web.AppKey("simulator", Simulator)
