"""Energy and CO2 of each phase with codecarbon's ``OfflineEmissionsTracker``.

Offline, with an explicit country (a flag): the online tracker cannot geolocate here and
silently assumes Canada. Without RAPL (``/sys/class/powercap/intel-rapl``) or a GPU power
counter, codecarbon *estimates* CPU power from a TDP table scaled by load, and RAM from a
flat figure: every record says which (``mode``). A tracker that fails or returns nothing
is recorded as ``"status": "unavailable"`` with the reason, never as 0.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.resources
import json
import logging
import os
from typing import Iterator


@functools.lru_cache(maxsize=1)
def known_countries() -> frozenset:
    """The ISO 3166 alpha-3 codes codecarbon has a grid energy mix for (its ``global_energy_mix.json``);
    empty when the file cannot be read (then no code is refused here)."""
    try:
        mix = importlib.resources.files("codecarbon") / "data" / "private_infra" / "global_energy_mix.json"
        return frozenset(json.loads(mix.read_text(encoding="utf-8")))
    except (ImportError, OSError, ValueError):
        return frozenset()


def check_country(country: str) -> None:
    """Refuses a country codecarbon has no grid figure for (it would label a made-up grid).

    Args:
        country: An ISO 3166 alpha-3 code (``--carbon_country``).

    Raises:
        ValueError: naming the value and a few valid codes.

    Example:
        >>> check_country("FRA")   # silent: codecarbon knows France's grid
    """
    known = known_countries()
    if known and country not in known:
        raise ValueError(f"carbon_country={country!r} is not a country codecarbon has a grid energy mix for; give "
                         f"an ISO 3166 alpha-3 code such as USA, FRA, DEU, CHN, IND ({len(known)} are known)")


def energy_mode() -> str:
    """How this machine's energy is known: measured from RAPL counters, or estimated.

    Returns:
        ``"measured (RAPL)"`` when RAPL energy counters are readable, else ``"estimated (...)"``
        saying how codecarbon estimates.

    Example:
        >>> energy_mode()   # in a container without /sys/class/powercap
        'estimated (codecarbon CPU model from TDP and load, flat RAM power; no RAPL)'
    """
    for path in glob.glob("/sys/class/powercap/intel-rapl:*/energy_uj"):
        try:
            with open(path) as handle:
                int(handle.read().strip())
            return "measured (RAPL)"
        except (OSError, ValueError):
            continue
    return "estimated (codecarbon CPU model from TDP and load, flat RAM power; no RAPL)"


@contextlib.contextmanager
def track(phase: str, output_dir: str, country: str = "USA") -> Iterator[dict]:
    """Tracks energy and CO2 of the enclosed code; fills the yielded dict on exit.

    Args:
        phase: Name of the phase ("scoring", "dense", "ticket"), written to emissions.csv.
        output_dir: Folder of emissions.csv.
        country: ISO 3166 alpha-3 country code of the grid's carbon intensity.

    Yields:
        A dict that, after the block, holds ``phase, status, mode, country, duration_s,
        energy_kwh, co2_kg`` (or ``status="unavailable"`` and ``reason``).

    Example:
        >>> with track("dense", "runs/x", "FRA") as record:
        ...     model.fit(...)
        >>> record["co2_kg"]
    """
    record = {"phase": phase, "country": country, "mode": energy_mode()}
    tracker = None
    try:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        os.makedirs(output_dir, exist_ok=True)
        tracker = OfflineEmissionsTracker(
            country_iso_code=country, output_dir=output_dir, project_name=phase,
            log_level="error", save_to_file=True, measure_power_secs=5, allow_multiple_runs=True,
        )
        tracker.start()
    except Exception as error:  # codecarbon fails in many ways; none may stop training
        record.update(status="unavailable", reason=f"tracker did not start: {error}")
        tracker = None
    try:
        yield record
    finally:
        if tracker is not None:
            try:
                emissions = tracker.stop()
                data = tracker.final_emissions_data
            except Exception as error:
                emissions, data, reason = None, None, f"tracker did not stop cleanly: {error}"
            else:
                reason = "codecarbon returned no emissions"
            if emissions is None or data is None:
                record.update(status="unavailable", reason=reason)
            else:
                record.update(status="ok", duration_s=float(data.duration), energy_kwh=float(data.energy_consumed),
                              co2_kg=float(data.emissions), cpu_power_w=float(data.cpu_power),
                              ram_power_w=float(data.ram_power))
