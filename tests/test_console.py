"""Our terminal output, under the benchmark and rastervision CLIs (benchmark.console)."""

import logging

from benchmark import console


def test_installed_log_routing_reaches_the_root_once(caplog):
    """A user's root handler (or pytest's capture) sees each of our records once, not twice."""
    console.install()
    console.install()  # idempotent
    caplog.set_level(logging.INFO)
    logging.getLogger("benchmark.some.module").warning("one line")
    assert [r.getMessage() for r in caplog.records] == ["one line"]


def test_the_measuring_tools_progress_is_routed_too():
    """``tools.*`` progress lines reach RV's handlers (they were dropped, warnings aside)."""
    seen = []
    catcher = logging.Handler()
    catcher.emit = seen.append
    rv_log = logging.getLogger(console.RV_LOGGER)
    rv_log.addHandler(catcher)
    try:
        console.log_like_rastervision(also=("tools",))
        logging.getLogger("tools.ablation").info("Starting baseline-seed0")
    finally:
        rv_log.removeHandler(catcher)
    assert [r.getMessage() for r in seen] == ["Starting baseline-seed0"]
