"""Reading compose.yaml the way Compose does, as far as the tests need: YAML with its merge keys,
`${NAME:-default}` interpolation (defaults may nest) and the profiles' command lines documented
in the file's header. No Docker engine runs here, so this is how the tests see a resolved file."""

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import takewhile

import yaml

from service.paths import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "compose.yaml"


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's `$$`, `${NAME}` and `${NAME:-default}` (an unset or empty NAME: the default)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            name, _, default = text[i + 2 : end].partition(":-")
            out.append(env.get(name) or interpolate(default, env))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for position in range(start, len(text)):
        if text.startswith("${", position):
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    raise ValueError(f"unclosed ${{ in {text!r}")


def documented_environment(profile: str) -> dict[str, str]:
    """The variables of the command line the header documents for `profile`."""
    marker = f"COMPOSE_PROFILES={profile}"
    comments = (line for line in COMPOSE_FILE.read_text().splitlines() if line.startswith("#"))
    line = next(line for line in comments if marker in line)
    words = line.lstrip("#").split()
    return dict(word.split("=", 1) for word in takewhile(lambda word: "=" in word, words))


@dataclass(frozen=True)
class CitusLayout:
    """The `citus` profile's services: the one-shot that registers the nodes, and the nodes."""

    init: str
    coordinator: str
    workers: tuple[str, ...]


def citus_layout(compose: dict) -> CitusLayout:
    """The coordinator is the node citus-init talks to; every other Citus server is a worker."""
    services = {n: s for n, s in compose["services"].items() if "citus" in s.get("profiles", [])}
    init = next(n for n, s in services.items() if s["command"][0] == "psql")
    coordinator = services[init]["environment"]["PGHOST"]
    nodes = [n for n, s in services.items() if s["command"][0] == "postgres"]
    return CitusLayout(init, coordinator, tuple(n for n in nodes if n != coordinator))


def server_settings(service: dict) -> dict[str, str]:
    """The `-c name=value` settings of a `postgres` command."""
    command = service["command"]
    pairs = [command[i + 1] for i, word in enumerate(command) if word == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)
