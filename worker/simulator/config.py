"""The simulator's run-time rules: mode, cap, rate limit, token lifetime, versions, faults.

Changed while the server runs through `POST /_sim/config` with a partial JSON object: top-level
keys replace their value, except `faults`, which is merged per endpoint and per key, and whose
special endpoint `"*"` applies to every endpoint.

Keys:
- `validation_mode`: "a" (default; 400, nothing applied, problems name SKUs), "b" (400, problems
  name no SKU), "c" (200 with warnings naming SKUs, valid items applied), "d" (200 with warnings
  naming no SKU, valid items applied); aliases "reject-named", "reject-anonymous", "warn-named",
  "warn-anonymous".
- `products_cap` (500): products per line item.
- `rate_limit_per_minute` (250): product-endpoint calls per client_id per sliding 60 s.
- `token_ttl_seconds` (900): token lifetime, also the `expires_in` answered.
- `live_versions` (2026-01, 2026-07, 2027-01), `dead_versions` (2022-07 ... 2025-10, answer
  410), `sunsets` (version -> date; `Deprecation`/`Sunset` headers in its last 3 months).
- `hang_seconds` (600): how long a hang lasts before the connection is reset.
- `write_success` ("mixed"): the answer to a write without problems; "mixed" is append 200
  `{"warnings": [], "errors": []}` and the others 204; "200" or "204" for all four (the
  published spec allows both).
- `errors_after_apply` (false): a 5xx, hang or reset on a write happens after it was applied.
- `naming` ("path+quote"): how a problem names its SKU in modes a and c; `anonymous_count`
  ("detail"): how problems count the refused items they do not name in modes b and d (see
  `worker.simulator.shapes`).
- Limits Criteo does not publish, each off (None) by default: `ids_cap` (a write carrying more
  unique ids answers 400 `exceeded-ids-cap`, nothing applied), `page_cap` (a GET answers at
  most this many products, whatever `limit` asked), `max_page_limit` (a GET asking a larger
  `limit` answers 400 `invalid-paging`), `max_body_bytes` (a larger write body answers 413).
- `page_meta` ("full"): what a GET's `meta` holds: "full" (`count`, the `limit` applied,
  `offset`, `responseCount`), "asked-limit" (the same, but `limit` echoes the one asked even
  when fewer were given), "no-count" (no `count`), "none" (no `meta` at all).
- `faults`: endpoint ("token", "get", "append", "delete", "pause", "unpause", or "*") ->
  `latency` {distribution: none|constant|uniform|exponential, ms, min_ms, max_ms} and the
  probabilities `p_500`, `p_502`, `p_503`, `p_hang`, `p_reset`, `p_token_expired`,
  `p_bid_ignored` (see `worker.simulator.faults`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from worker.simulator.faults import ENDPOINTS, FaultSpec
from worker.simulator.shapes import AnonymousCount, Naming

ValidationMode = Literal["a", "b", "c", "d"]

#: Descriptive names accepted for the four ways of reporting validation problems.
MODE_ALIASES: dict[str, ValidationMode] = {
    "reject-named": "a",
    "reject-anonymous": "b",
    "warn-named": "c",
    "warn-anonymous": "d",
}


def _quarterly(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    """Criteo versions are quarterly; these are the ones known to be dead."""
    out = []
    year, month = first
    while (year, month) <= last:
        out.append(f"{year:04d}-{month:02d}")
        month += 3
        if month > 12:
            year, month = year + 1, month - 12
    return out


class SimConfig(BaseModel):
    """Everything about the simulator's behaviour that is not the scenario's data."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    validation_mode: ValidationMode = "a"
    products_cap: int = Field(default=500, ge=1)
    rate_limit_per_minute: int = Field(default=250, ge=1)
    token_ttl_seconds: int = Field(default=900, ge=1)
    live_versions: list[str] = Field(default_factory=lambda: ["2026-01", "2026-07", "2027-01"])
    dead_versions: list[str] = Field(default_factory=lambda: _quarterly((2022, 7), (2025, 10)))
    sunsets: dict[str, date] = Field(
        default_factory=lambda: {
            "2026-01": date(2027, 1, 27),
            "2026-07": date(2027, 7, 27),
            "2027-01": date(2028, 1, 27),
        }
    )
    hang_seconds: float = Field(default=600.0, gt=0)
    write_success: Literal["mixed", "200", "204"] = "mixed"
    errors_after_apply: bool = False
    naming: Naming = "path+quote"
    anonymous_count: AnonymousCount = "detail"
    ids_cap: int | None = Field(default=None, ge=1)
    page_cap: int | None = Field(default=None, ge=1)
    max_page_limit: int | None = Field(default=None, ge=1)
    page_meta: Literal["full", "asked-limit", "no-count", "none"] = "full"
    max_body_bytes: int | None = Field(default=None, ge=1)
    faults: dict[str, FaultSpec] = Field(
        default_factory=lambda: {endpoint: FaultSpec() for endpoint in ENDPOINTS}
    )

    @field_validator("validation_mode", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        return MODE_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("faults")
    @classmethod
    def _known_endpoints(cls, value: dict[str, FaultSpec]) -> dict[str, FaultSpec]:
        unknown = set(value) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {list(ENDPOINTS)}")
        return {endpoint: value.get(endpoint, FaultSpec()) for endpoint in ENDPOINTS}

    def updated(self, changes: dict[str, Any]) -> SimConfig:
        """A new config with `changes` applied (validated as a whole; the old one is untouched)."""
        data = self.model_dump()
        for key, value in changes.items():
            if key == "faults" and isinstance(value, dict):
                for endpoint, spec in value.items():
                    targets = ENDPOINTS if endpoint == "*" else (endpoint,)
                    for target in targets:
                        data["faults"][target] = _merge(data["faults"].get(target, {}), spec)
            else:
                data[key] = value
        return SimConfig.model_validate(data)


def _merge(base: dict[str, Any], changes: Any) -> Any:
    if not isinstance(changes, dict):
        return changes
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = _merge(old, value) if isinstance(old, dict) else value
    return merged
