"""The survey bench's AWS estimate and its tables, on figures whose answer is known."""

import pytest

from tools.survey_bench import INSTANCES, PER_KM2, aws_estimate, draw, markdown


def test_the_estimate_spreads_vcpu_hours_over_each_instance():
    rows = aws_estimate(km2_per_cpu_hour=50.0, cpu_side_km2_per_cpu_hour=200.0)
    assert len(rows) == sum(len(v) for v in INSTANCES.values())
    c5 = next(r for r in rows if r["instance"] == "c5.2xlarge")
    assert c5["instance_hours"] == pytest.approx(PER_KM2 / 50.0 / 8, abs=0.01)  # 2 vCPU-h / 8
    assert c5["usd"] == pytest.approx(c5["instance_hours"] * c5["usd_per_hour"], abs=0.01)
    assert not c5["floor"]
    gpu = next(r for r in rows if r["instance"] == "g4dn.xlarge")
    assert gpu["floor"] and gpu["instance_hours"] == pytest.approx(PER_KM2 / 200.0 / 4, abs=0.01)


def test_tables_and_picture(tmp_path):
    results = {
        "images": 16, "grid": 4, "overlap": 0.2, "area_km2": 0.81, "buildings": 900,
        "machine": "a CPU", "date": "2026-12-08", "cpu_side_s": 30.0,
        "runs": {
            1: {"wall_s": 100.0, "cpu_s": 190.0, "km2_per_cpu_hour": 15.3, "km2_per_hour": 29.2},
            2: {"wall_s": 60.0, "cpu_s": 200.0, "km2_per_cpu_hour": 14.6, "km2_per_hour": 48.6},
        },
        "aws_estimate": aws_estimate(15.3, 97.2),
    }  # fmt: skip
    text = markdown(results)
    assert "| 2 | 60.0 | 200.0 | 14.60 | 48.60 |" in text
    assert "(floor)" in text and "c5.2xlarge" in text
    draw(results, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 1000
