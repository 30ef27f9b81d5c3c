"""environment.yml (conda, Binder) lists exactly the dependencies of pyproject.toml; the README's commands exist."""
import re
import tomllib

from tools.paths import ROOT


def _normalize(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalize(r) for r in project["dependencies"] + project["optional-dependencies"]["course"]}
    listed = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^  - ([A-Za-z][\w.-]*\s*[<>=!~].*)$", line)
        if match and not match.group(1).startswith("python"):
            listed.add(_normalize(match.group(1)))
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert re.search(r"^  - python>=3\.11$", (ROOT / "environment.yml").read_text(), flags=re.M)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_commands[-1] == "./course test" and "./course test" in readme and "./course start" in readme
