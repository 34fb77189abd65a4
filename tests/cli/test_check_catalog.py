from benchmark.cli.check_catalog import main
from benchmark.cli.options import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

NIA = "data/opencities_stac_nia/catalog.json"


def test_real_nia_catalog_reports_its_quirks_and_goes_on(capsys):
    assert main([NIA]) == EXIT_FAILED  # its imagery is not in the subset: no usable scene
    out = capsys.readouterr().out
    assert "nia/825a50: labels: 634 of 634 buildings kept" in out
    assert "problem: nia/825a50: image" in out and "825a50.tif does not exist" in out


def test_kampala_sample_is_usable(capsys):
    assert main(["data/kampala_sample/train_tier_1/catalog.json"]) == EXIT_OK
    assert "2 usable scene(s): kam/8a5983, kam/94f080" in capsys.readouterr().out


def test_missing_catalog_is_one_line(capsys, tmp_path):
    assert main([str(tmp_path / "none.json")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("error: ")
