import codecarbon

from tf_lottery.runtime import carbon


def test_a_phase_is_tracked_with_its_mode(tmp_path):
    with carbon.track("dense", str(tmp_path), "FRA") as record:
        sum(i * i for i in range(200_000))
    assert record["phase"] == "dense" and record["country"] == "FRA"
    assert record["mode"].startswith(("measured", "estimated"))
    if record["status"] == "ok":
        assert record["energy_kwh"] > 0 and record["co2_kg"] > 0 and record["duration_s"] > 0
        assert "dense" in (tmp_path / "emissions.csv").read_text()
    else:
        assert record["reason"]


class _SilentTracker:
    def __init__(self, *args, **kwargs):
        self.final_emissions_data = None

    def start(self):
        pass

    def stop(self):
        return None  # what codecarbon does when it swallowed an error


class _BrokenTracker:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("no power data")


def test_a_tracker_returning_nothing_is_unavailable_not_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _SilentTracker)
    with carbon.track("ticket", str(tmp_path)) as record:
        pass
    assert record["status"] == "unavailable" and "energy_kwh" not in record and "co2_kg" not in record


def test_a_tracker_that_fails_never_stops_the_work(tmp_path, monkeypatch):
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _BrokenTracker)
    with carbon.track("ticket", str(tmp_path)) as record:
        done = True
    assert done and record["status"] == "unavailable" and "no power data" in record["reason"]
