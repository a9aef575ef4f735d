"""The bench's own certificate authority and the receiver's certificate (``cryptography``).

A CA certificate (``ca.pem``, CA:TRUE, keyCertSign) and a leaf for the receiver
(``receiver.pem``/``receiver.key``: CA:FALSE, serverAuth, SAN ``IP:127.0.0.1`` and
``DNS:localhost``), both ECDSA P-256, valid from yesterday for a week. The leaf is signed by the
CA rather than self-signed because webpki (rustls) refuses a CA certificate as an end-entity
certificate. Both bootstraps are pointed at ``ca.pem`` the same way, with SSL_CERT_FILE:

- the seed (urllib3 2.x with no ``ca_certs``) calls ``SSLContext.load_default_certs()``, i.e.
  OpenSSL's default verify paths, which honour SSL_CERT_FILE;
- the signer's reqwest 0.13 (feature ``rustls``) verifies with rustls-platform-verifier 0.7,
  which on Linux loads roots with rustls-native-certs 0.8 ``load_native_certs()``: when
  SSL_CERT_FILE or SSL_CERT_DIR is set, it reads only those (not /etc/ssl).
"""
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory):
    """Writes ca.pem, receiver.pem and receiver.key into ``directory``; answers their paths."""
    directory = Path(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("alarm-relay cold-start bench CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1")).issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    paths = {"ca": directory / "ca.pem", "cert": directory / "receiver.pem",
             "key": directory / "receiver.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths
