"""docs/configuration.md is generated from the settings model and must be regenerated with it."""

from pathlib import Path

from tenancy.settings import TenancySettings
from tenancy.settings_doc import DOC_PATH, main, render


def test_configuration_reference_matches_the_settings_model() -> None:
    committed = DOC_PATH.read_text()
    assert committed == render(), "run: python -m tenancy.settings_doc"
    for name in TenancySettings.model_fields:
        assert f"| `TENANTRY_{name.upper()}` |" in committed


def test_the_check_fails_on_a_stale_reference_until_it_is_regenerated(tmp_path: Path) -> None:
    reference = tmp_path / "configuration.md"
    reference.write_text(render().replace("Header naming the tenant.", "Outdated text."))
    assert main(["--check"], reference) == 1
    assert main([], reference) == 0
    assert main(["--check"], reference) == 0
