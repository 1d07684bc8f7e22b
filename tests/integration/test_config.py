"""A bad configuration stops a process before it touches data, naming file, line and key."""
import os
import subprocess

from edgehub_harness import BUILD

GOOD = """edge:
  device_id: edge-1
  hub_hostname: hub.example
  edgehub_key: "{key}"
listeners:
  tls:
    port: 0
storage:
  dir: {dir}/lib
  max_bytes: {max_bytes}
runtime_dir: {dir}/run
"""
KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def run(exe, path):
    return subprocess.run([exe, "--config", path], capture_output=True, text=True, timeout=20)


def test_bad_value_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(GOOD.format(key=KEY, dir=tmp_path, max_bytes="12 parsecs"))
    for exe in ("hub-store/edgehub-hub-store", "auth-cache/edgehub-auth-cache", "runner/edgehub-run"):
        p = run(os.path.join(BUILD, exe), str(cfg))
        assert p.returncode == 2, f"{exe}: exit {p.returncode} (2 = configuration error, not restarted)"
        assert f"{cfg}:10:" in p.stderr and "storage.max_bytes" in p.stderr, f"{exe}: {p.stderr}"
        assert not (tmp_path / "lib").exists(), f"{exe} touched the storage folder"


def test_missing_file_and_syntax_error(tmp_path):
    exe = os.path.join(BUILD, "hub-store", "edgehub-hub-store")
    p = run(exe, str(tmp_path / "nope.yaml"))
    assert p.returncode != 0 and "nope.yaml" in p.stderr
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("edge:\n  device_id: [unclosed\n")
    p = run(exe, str(cfg))
    assert p.returncode != 0 and str(cfg) in p.stderr


def test_missing_required_key(tmp_path):
    cfg = tmp_path / "partial.yaml"
    cfg.write_text(GOOD.format(key=KEY, dir=tmp_path, max_bytes="10MiB").replace("  device_id: edge-1\n", ""))
    p = run(os.path.join(BUILD, "auth-cache", "edgehub-auth-cache"), str(cfg))
    assert p.returncode != 0 and "edge.device_id" in p.stderr
