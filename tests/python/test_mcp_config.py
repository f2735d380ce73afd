"""`microloop mcp wrap|unwrap CLIENT`: every client's file format, exact restoration, and the
cases wrap must leave alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from microloop import mcp_config
from microloop.cli import main

RELAY = "/opt/microloop/bin/microloop-mcp"

JSON_CLIENTS = {
    # client: (file under the project or home, key, extra entry fields the client uses)
    "claude-code": (".mcp.json", "mcpServers", {"type": "stdio"}),
    "cursor": (".cursor/mcp.json", "mcpServers", {}),
    "vscode": (".vscode/mcp.json", "servers", {"type": "stdio"}),
    "gemini": (".gemini/settings.json", "mcpServers", {"cwd": "./srv", "timeout": 30000}),
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    return home


def write_json(path: Path, key: str, extra: dict, indent=2) -> bytes:
    doc = {
        "theme": "dark",
        key: {
            "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/a b"],
                      "env": {"TOKEN": "x"}, **extra},
            "web": {"url": "https://example.invalid/mcp"},
            "bare": {"command": "my-server"},
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = (json.dumps(doc, indent=indent) + "\n").encode()
    path.write_bytes(raw)
    return raw


@pytest.mark.parametrize("client", list(JSON_CLIENTS))
def test_wrap_puts_every_stdio_server_under_the_relay_and_unwrap_restores_the_bytes(client, tmp_path, capsys):
    name, key, extra = JSON_CLIENTS[client]
    path = tmp_path / "proj" / name
    original = write_json(path, key, extra, indent=4)

    assert main(["mcp", "wrap", client, "--project", str(tmp_path / "proj"), "--relay", RELAY, "--policy", "strict"]) == 0
    out = capsys.readouterr().out
    assert "files: wrapped" in out and "web: not a command" in out
    doc = json.loads(path.read_text())
    files = doc[key]["files"]
    assert files["command"] == RELAY
    assert files["args"] == ["--policy", "strict", "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/a b"]
    assert files["env"] == {"TOKEN": "x"} and all(files[k] == v for k, v in extra.items())
    assert doc[key]["bare"] == {"command": RELAY, "args": ["--policy", "strict", "--", "my-server"]}
    assert doc[key]["web"] == {"url": "https://example.invalid/mcp"} and doc["theme"] == "dark"
    assert path.read_text().startswith('{\n    "theme"'), "the file's indentation is kept"

    assert main(["mcp", "wrap", client, "--project", str(tmp_path / "proj"), "--relay", RELAY]) == 0
    assert "already wrapped" in capsys.readouterr().out

    assert main(["mcp", "unwrap", client, "--project", str(tmp_path / "proj")]) == 0
    assert path.read_bytes() == original


def test_unwrap_after_the_file_changed_restores_the_entries_and_keeps_the_change(tmp_path):
    path = tmp_path / ".mcp.json"
    write_json(path, "mcpServers", {})
    before = json.loads(path.read_text())
    mcp_config.wrap(path, "claude-code", relay=RELAY)
    doc = json.loads(path.read_text())
    doc["mcpServers"]["added"] = {"command": "other"}
    path.write_text(json.dumps(doc, indent=2))

    lines = mcp_config.unwrap(path, "claude-code")
    assert any("entries were restored" in line for line in lines)
    after = json.loads(path.read_text())
    assert after["mcpServers"]["files"] == before["mcpServers"]["files"]
    assert after["mcpServers"]["bare"] == {"command": "my-server"}
    assert after["mcpServers"]["added"] == {"command": "other"}


CODEX = '''# my codex config
model = "o4"

[mcp_servers.files]
command = "npx"   # the filesystem server
args = [
  "-y",
  "@modelcontextprotocol/server-filesystem",
  "/srv/it's here",
]
startup_timeout_sec = 20

[mcp_servers.files.env]
TOKEN = "x"

[mcp_servers."with.dot"]
command = 'uvx'

[profiles.fast]
model = "o4-mini"
'''


def test_codex_toml_keeps_everything_but_the_command_lines(tmp_path, isolated):
    path = isolated / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(CODEX)
    assert mcp_config.config_path("codex", user=True) == path

    mcp_config.wrap(path, "codex", relay=RELAY)
    text = path.read_text()
    doc = tomllib.loads(text)
    assert doc["mcp_servers"]["files"]["command"] == RELAY
    assert doc["mcp_servers"]["files"]["args"] == ["--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/it's here"]
    assert doc["mcp_servers"]["files"]["env"] == {"TOKEN": "x"} and doc["mcp_servers"]["files"]["startup_timeout_sec"] == 20
    assert doc["mcp_servers"]["with.dot"] == {"command": RELAY, "args": ["--", "uvx"]}
    assert doc["profiles"] == {"fast": {"model": "o4-mini"}}
    assert text.startswith("# my codex config\n")

    mcp_config.unwrap(path, "codex")
    assert path.read_text() == CODEX


def test_codex_unwrap_without_the_saved_bytes_restores_the_values(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CODEX)
    mcp_config.wrap(path, "codex", relay=RELAY)
    for f in (Path(os.environ["XDG_STATE_HOME"]) / "microloop" / "mcp-wrap").iterdir():
        f.unlink()
    mcp_config.unwrap(path, "codex")
    assert tomllib.loads(path.read_text()) == tomllib.loads(CODEX)


@pytest.mark.parametrize("client,expected", [
    ("claude-code", ".claude.json"),
    ("claude-desktop", ".config/Claude/claude_desktop_config.json"),
    ("cursor", ".cursor/mcp.json"),
    ("vscode", ".config/Code/User/mcp.json"),
    ("gemini", ".gemini/settings.json"),
    ("codex", ".codex/config.toml"),
])
def test_user_files(client, expected, isolated):
    assert mcp_config.config_path(client, user=True) == isolated / expected


def test_claude_desktop_is_user_only_and_wraps_its_file(isolated, capsys):
    path = mcp_config.config_path("claude-desktop")
    original = write_json(path, "mcpServers", {})
    assert main(["mcp", "wrap", "claude-desktop", "--relay", RELAY]) == 0
    assert json.loads(path.read_text())["mcpServers"]["files"]["command"] == RELAY
    assert main(["mcp", "unwrap", "claude-desktop"]) == 0
    assert path.read_bytes() == original
    with pytest.raises(mcp_config.ConfigError, match="no project configuration"):
        mcp_config.config_path("claude-desktop", project=".")


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ('{"mcpServers": []}', "`mcpServers` is not an object"),
])
def test_bad_files_are_said_plainly_and_left_alone(tmp_path, capsys, content, message):
    path = tmp_path / ".mcp.json"
    if content is not None:
        path.write_text(content)
    assert main(["mcp", "wrap", "claude-code", "--config", str(path)]) == 1
    assert message in capsys.readouterr().err
    if content is not None:
        assert path.read_text() == content


def test_only_the_named_servers(tmp_path):
    path = tmp_path / ".cursor" / "mcp.json"
    write_json(path, "mcpServers", {})
    mcp_config.wrap(path, "cursor", relay=RELAY, only=["bare"])
    doc = json.loads(path.read_text())
    assert doc["mcpServers"]["bare"]["command"] == RELAY
    assert doc["mcpServers"]["files"]["command"] == "npx"


def test_the_relay_is_installed_beside_the_interpreter_and_wrap_uses_it():
    from microloop.mcp_config import _default_relay

    relay = _default_relay()
    assert os.path.isabs(relay) and os.access(relay, os.X_OK)
    assert os.path.dirname(relay) == os.path.dirname(sys.executable), "pip puts it in the environment's bin/"
    out = subprocess.run([relay, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "microloop-mcp" in out.stdout
