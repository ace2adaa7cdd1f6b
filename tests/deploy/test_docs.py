"""docs/configuration.md is generated from the settings model and must be regenerated with it;
relative links in the README and docs lead somewhere; docs/scale-out.md runs the compose profile
compose.yaml documents."""

import re
from pathlib import Path

from service.paths import PROJECT_ROOT
from tenancy.settings import TenancySettings
from tenancy.settings_doc import DOC_PATH, main, render
from tests.support.compose import documented_environment

MARKDOWN = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


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


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors: headings lower-cased, punctuation dropped, spaces turned into `-`."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(document: Path) -> list[str]:
    return [
        target
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text())
        if not re.match(r"[a-z]+:", target) and not leads_somewhere(document, target)
    ]


def leads_somewhere(document: Path, target: str) -> bool:
    """A file that exists and, for a Markdown file with `#anchor`, a heading of that anchor."""
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    if not linked.exists():
        return False
    return not anchor or linked.suffix != ".md" or anchor in heading_anchors(linked.read_text())


def test_relative_links_lead_to_files_and_headings() -> None:
    assert {doc.name: broken_links(doc) for doc in MARKDOWN} == {doc.name: [] for doc in MARKDOWN}


def test_the_link_check_catches_a_missing_file_and_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Real heading\n")
    document = tmp_path / "doc.md"
    document.write_text(
        "[ok](other.md#real-heading) [gone](missing.md) [bad](other.md#no-such) [self](#doc)\n"
        "# Doc\n"
    )
    assert broken_links(document) == ["missing.md", "other.md#no-such"]


def test_scale_out_doc_starts_the_profile_compose_documents() -> None:
    environment = documented_environment("citus")
    command = " ".join(f"{name}={value}" for name, value in environment.items())
    assert f"{command} docker compose up" in (PROJECT_ROOT / "docs" / "scale-out.md").read_text()


def _doc_text(name: str) -> str:
    return " ".join((PROJECT_ROOT / name).read_text().split())


def test_the_api_doc_says_which_responses_carry_a_request_id() -> None:
    """The edge's answers are made before a request (and its id) exists: the API doc says so."""
    from tenancy.edge import _PROBLEMS

    text = _doc_text("docs/api.md")
    assert "Every response carries `X-Request-ID`" not in text
    for status, (kind, _) in _PROBLEMS.items():
        assert f"{status} `{kind}`" in text, (status, kind)


def test_the_docs_put_pgdata_inside_the_data_dir() -> None:
    """TENANTRY_DATA_DIR is pgdata's parent, not the cluster itself."""
    text = _doc_text("README.md") + " " + _doc_text("docs/deployment.md")
    assert "lives in `pgdata/` inside `TENANTRY_DATA_DIR`" in text
    assert "`.tenantry/pgdata` in the project folder (`TENANTRY_DATA_DIR`;" not in text
