"""TLS material for the WinRM test hosts: a CA made per fleet, a server certificate it signs for
127.0.0.1 and localhost, and a second, unrelated CA whose certificate a bad_certificate host shows;
a client certificate for the login (``kops``) the fleet's CA signs, which a client_certificate
host demands, and one the other CA signs, which it refuses.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ServerPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the fleet's CA certificate: what an inventory's ca_trust_path names
    wrong_ca: Path  # another CA, trusted by nobody
    good: ServerPair  # signed by ca
    bad: ServerPair  # signed by wrong_ca
    client: ServerPair  # TLS client certificate for the login, signed by ca
    wrong_client: ServerPair  # the same, signed by wrong_ca


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kremove test fleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _client(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, user: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A client authentication certificate for ``user`` (WinRM maps it to the account by the
    user principal name; the test host by the common name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(user))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pki_files(directory: Path) -> Pki:
    """Where make_pki puts each file (so a fleet loaded from its state file finds them)."""
    return Pki(
        ca=directory / "ca.pem",
        wrong_ca=directory / "wrong-ca.pem",
        good=ServerPair(directory / "server-good.pem", directory / "server-good.key"),
        bad=ServerPair(directory / "server-bad.pem", directory / "server-bad.key"),
        client=ServerPair(directory / "client.pem", directory / "client.key"),
        wrong_client=ServerPair(directory / "client-wrong.pem", directory / "client-wrong.key"),
    )


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    pki = pki_files(directory)
    ca_key, ca_cert = _ca("kremove test fleet CA")
    wrong_key, wrong_cert = _ca("some other CA")
    _write(pki.ca, _pem(ca_cert))
    _write(pki.wrong_ca, _pem(wrong_cert))
    for pair, (k, c) in ((pki.good, (ca_key, ca_cert)), (pki.bad, (wrong_key, wrong_cert))):
        skey, scert = _server(k, c)
        _write(pair.cert, _pem(scert))
        _write(pair.key, _key_pem(skey))
    clients = ((pki.client, (ca_key, ca_cert)), (pki.wrong_client, (wrong_key, wrong_cert)))
    for pair, (k, c) in clients:
        ckey, ccert = _client(k, c, "kops")
        _write(pair.cert, _pem(ccert))
        _write(pair.key, _key_pem(ckey))
    return pki
