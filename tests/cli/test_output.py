"""Our terminal output under the rastervision CLI (benchmark.cli.output)."""

import logging

from benchmark.cli import output


def test_installed_log_routing_reaches_the_root_once(caplog):
    """A user's root handler (or pytest's capture) sees each of our records once, not twice."""
    output.install()
    output.install()  # idempotent
    caplog.set_level(logging.INFO)
    logging.getLogger("benchmark.some.module").warning("one line")
    assert [r.getMessage() for r in caplog.records] == ["one line"]


def test_the_measuring_tools_progress_is_routed_too():
    """``tools.*`` progress lines reach RV's handlers (they were dropped, warnings aside)."""
    seen = []
    catcher = logging.Handler()
    catcher.emit = seen.append
    rv_log = logging.getLogger(output.RV_LOGGER)
    rv_log.addHandler(catcher)
    try:
        output.log_like_rastervision(also=("tools",))
        logging.getLogger("tools.ablation").info("Starting baseline-seed0")
    finally:
        rv_log.removeHandler(catcher)
    assert [r.getMessage() for r in seen] == ["Starting baseline-seed0"]
