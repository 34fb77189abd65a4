"""``python -m benchmark.cli``: the ``benchmark`` command group (:mod:`benchmark.cli.main`)."""

from benchmark.cli.main import run

if __name__ == "__main__":
    run()
