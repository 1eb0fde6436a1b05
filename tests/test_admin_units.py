"""The admin app's parts that need no running host: sign-in limits, the profile editor, the layering."""

from __future__ import annotations

import ast
import re
import shutil
import time
from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram

from host import metrics
from host.admin import profile_editor as editor
from host.admin.sessions import SignInLimiter
from host.profiles.problems import ProfileError
from tests.conftest import REPO_ROOT


def test_failures_from_one_address_across_many_names_are_limited_for_that_address_only() -> None:
    limiter = SignInLimiter(per_user=5, per_address=20)
    for n in range(20):
        assert limiter.retry_after(f"name{n}", "10.0.0.1") == 0
        limiter.failed(f"name{n}", "10.0.0.1")
    assert limiter.retry_after("someone-else", "10.0.0.1") > 0
    assert limiter.retry_after("someone-else", "10.0.0.2") == 0


def test_failures_for_one_name_are_limited_from_every_address() -> None:
    limiter = SignInLimiter(per_user=3, per_address=100)
    for n in range(3):
        limiter.failed("Ada", f"10.0.0.{n}")
    assert limiter.retry_after("ada", "10.9.9.9") > 0


def test_old_failures_leave_the_window() -> None:
    limiter = SignInLimiter(per_user=2, per_address=100, window_s=0.05)
    limiter.failed("ada", "a")
    limiter.failed("ada", "a")
    assert limiter.retry_after("ada", "a") > 0
    time.sleep(0.06)
    assert limiter.retry_after("ada", "a") == 0


def test_the_limiter_is_capped() -> None:
    limiter = SignInLimiter(max_keys=10)
    for n in range(100):
        limiter.failed(f"name{n}", f"addr{n}")
    assert len(limiter._windows) <= 10


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "npc_profiles" / "example", tmp_path / "example")
    return tmp_path / "example"


def test_a_form_edit_keeps_the_authors_comments_and_changes_only_that_value(server_dir: Path) -> None:
    text = (server_dir / "bram.toml").read_text()
    fields = {field.path: field for field in editor.form_fields(text)}
    assert fields["persona.goals"].kind == "list"
    edited = editor.apply_values(text, {"name": "Bram the Bold", "persona.goals": ["Sell stew."]})
    assert 'name = "Bram the Bold"' in edited
    assert [line for line in edited.splitlines() if line.startswith("#")] == [
        line for line in text.splitlines() if line.startswith("#")
    ]
    assert {f.path: f.value for f in editor.form_fields(edited)}["persona.goals"] == ["Sell stew."]


def test_check_names_the_field_and_save_refuses_without_touching_the_file(server_dir: Path) -> None:
    file = editor.ProfileFile(server_dir, "bram.toml")
    before = file.path.read_text()
    bad = editor.apply_values(before, {"voice.speed": "9"})
    problems = editor.check(file, bad)
    assert [p.field for p in problems] == ["voice.speed"]
    with pytest.raises(editor.EditRejectedError):
        editor.save(file, bad)
    assert file.path.read_text() == before
    assert editor.check(file, "id = [unclosed")[0].field == "(file)"


def test_a_field_the_file_does_not_hold_is_refused(server_dir: Path) -> None:
    with pytest.raises(editor.EditRejectedError, match="nmae: not a field"):
        editor.apply_values((server_dir / "bram.toml").read_text(), {"nmae": "x"})


def test_a_good_save_replaces_the_file_whole_and_leaves_no_temporary_file(server_dir: Path) -> None:
    file = editor.ProfileFile(server_dir, "bram.toml")
    editor.save(file, editor.apply_values(file.path.read_text(), {"name": "Bram Two"}))
    assert 'name = "Bram Two"' in file.path.read_text()
    assert sorted(p.name for p in server_dir.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("name", ["../server.toml", "x/../../y.toml", "bram.txt", ".toml", "Bram.toml"])
def test_file_names_that_could_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ProfileError):
        editor.profile_file(tmp_path, "example", name)
    with pytest.raises(ProfileError):
        editor.profile_file(tmp_path, "..", "bram.toml")


def test_a_new_npc_from_the_template_passes_the_profile_check(server_dir: Path) -> None:
    editor.create_from_template(editor.ProfileFile(server_dir, "wren.toml"), "wren", "Wren")
    assert editor.check(editor.ProfileFile(server_dir, "wren.toml"), (server_dir / "wren.toml").read_text()) == []
    with pytest.raises(ProfileError, match="already exists"):
        editor.create_from_template(editor.ProfileFile(server_dir, "wren.toml"), "wren", "Wren")


FORBIDDEN = (
    "host.brain",
    "host.speech",
    "host.voice",
    "host.llm",
    "host.roles.bridge",
    "host.roles.speech",
    "host.roles.brain",
    "host.roles.runner",
    "proximity_audio",
    "integrations",
)


def test_the_admin_package_reaches_the_host_only_through_hub_store_and_profiles() -> None:
    offending = []
    for path in (REPO_ROOT / "host" / "admin").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offending += [f"{path.name}: {name}" for name in names if name.startswith(FORBIDDEN)]
    assert offending == []


def test_the_grafana_dashboard_covers_every_series_the_page_charts() -> None:
    charts = (REPO_ROOT / "host" / "admin" / "static" / "charts.js").read_text()
    dashboard = (REPO_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "npc-host.json").read_text()
    charted = set(re.findall(r'"(npc_host_[a-z_]+)"', charts))
    assert len(charted) >= 9
    missing = {name for name in charted if name not in dashboard}
    assert missing == set()
    defined = {m._name for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)}
    # prometheus_client keeps a counter's name without the `_total` it exposes
    assert charted <= defined | {f"{name}_total" for name in defined}
