"""The deploy recipe's proxy configuration (deploy/nginx.conf) as nginx itself reads it: the HTTPS
server with a certificate (a self-signed one here, where Let's Encrypt's would be), and the plain
http variant benchmarks/replicas.py runs. A typo there would otherwise show only on a shop's server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_accepts(conf: str, folder: Path) -> subprocess.CompletedProcess:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: run `bash .ci/setup` (it installs Debian's nginx-light)")
    path = folder / "nginx.conf"
    path.write_text(conf.replace("csbot-a:7860", "127.0.0.1:7860").replace("csbot-b:7860", "127.0.0.1:7861"))
    return subprocess.run([NGINX, "-t", "-c", str(path), "-g", f"pid {folder}/pid; error_log {folder}/error.log;"],
                          capture_output=True, text=True)


def test_the_https_proxy_configuration_is_valid_and_redirects_plain_http(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=help.test",
                    "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem")],
                   check=True, capture_output=True)
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "return 301 https://$host$request_uri" in conf and "Strict-Transport-Security" in conf
    assert 'CSBOT_SECURE_COOKIES: "true"' in (ROOT / "deploy" / "compose.yaml").read_text()
    conf = conf.replace("/etc/letsencrypt/live/csbot", str(live)).replace("listen 80;", "listen 127.0.0.1:1;")
    checked = nginx_accepts(re.sub(r"listen 443 ssl", "listen 127.0.0.1:2 ssl", conf), tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_the_benchmarks_plain_http_variant_is_valid(tmp_path):
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from replicas import plain_http
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    conf = plain_http((ROOT / "deploy" / "nginx.conf").read_text(), port=3)
    assert "ssl" not in conf and "listen 80" not in conf and "listen 127.0.0.1:3;" in conf
    checked = nginx_accepts(conf, tmp_path)
    assert checked.returncode == 0, checked.stderr
