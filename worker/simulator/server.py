"""The simulator's HTTP server: its app (Criteo's token and promoted-products endpoints plus
`/_sim/`, see `worker.simulator.routes`), served in a thread for tests or in the foreground."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from worker.simulator.config import SimConfig
from worker.simulator.routes.inspection import (
    sim_config,
    sim_requests,
    sim_reset,
    sim_scenario,
    sim_state,
)
from worker.simulator.routes.products import products_endpoint
from worker.simulator.routes.token import token_endpoint
from worker.simulator.scenario import Scenario, generate
from worker.simulator.simulator import SIM, Simulator


def create_app(
    scenario: Scenario, *, seed: int = 0, config: SimConfig | None = None
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM] = Simulator(scenario, seed, config or SimConfig())
    app.router.add_post("/oauth2/token", token_endpoint)
    base = "/{version}/retail-media/line-items/{line_item_id}/products"
    app.router.add_get(base, products_endpoint, allow_head=False)
    app.router.add_post(base + "/{action}", products_endpoint)
    app.router.add_get("/_sim/state", sim_state)
    app.router.add_get("/_sim/requests", sim_requests)
    app.router.add_post("/_sim/reset", sim_reset)
    app.router.add_post("/_sim/scenario", sim_scenario)
    app.router.add_get("/_sim/config", sim_config)
    app.router.add_post("/_sim/config", sim_config)
    return app


class RunningSimulator:
    """A simulator serving from a background thread with its own event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        runner: web.AppRunner,
        thread: threading.Thread,
    ) -> None:
        self.port = port
        self.url = f"http://{host}:{port}"
        self._loop = loop
        self._runner = runner
        self._thread = thread

    def stop(self) -> None:
        """Stop serving; requests still hanging are cancelled."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _shutdown(self) -> None:
        """Close the server, then cancel handlers still running (hangs, latency)."""
        await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def start_in_thread(
    scenario: Scenario | None = None,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    config: SimConfig | None = None,
) -> RunningSimulator:
    """Start a simulator on `port` (0: a free one) and return once it accepts connections."""
    app = create_app(scenario or generate(seed), seed=seed, config=config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="criteo-simulator", daemon=True)
    thread.start()

    async def serve() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024).start()
        return runner, int(runner.addresses[0][1])

    runner, bound = asyncio.run_coroutine_threadsafe(serve(), loop).result(30)
    return RunningSimulator(host, bound, loop, runner, thread)


def run_forever(host: str, port: int, scenario_file: Path | None, seed: int | None) -> None:
    """Serve until interrupted: the scenario file if given, else one generated from `seed`."""
    scenario = Scenario.from_file(scenario_file) if scenario_file else generate(seed or 0)
    app = create_app(scenario, seed=seed or 0)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=1.0,
        print=lambda _: print(f"Criteo API simulator on http://{host}:{port}", flush=True),
    )
