"""A real OPC-UA server (PyPI asyncua) for the taosx OPC-UA source tests and benchmark.

Usage: opcua_server.py PORT COUNT [--secure DIR] [--user NAME:PASSWORD] [--period MS]

Publishes COUNT variables under Objects/Plant (`ns=2;s=Plant`): `ns=2;s=v{i}` with browse name
`v{i}`; every tenth is an Int32 (`ns=2;i={i}` style ids are avoided so names stay predictable),
every other one a Double. All values change every PERIOD ms (default 200). With --secure the only
endpoint is Basic256Sha256 + SignAndEncrypt with a certificate made in DIR on first start (any
client certificate is accepted); with --user, only that user (or any X.509 user certificate) may
log in. Prints READY when
listening and
RATE lines (values updated per second) every 5 s, on stderr.
"""
import argparse
import asyncio
import datetime
import os
import sys
import time

from asyncua import Server, ua
from asyncua.server.user_managers import UserManager


class OneUser(UserManager):
    def __init__(self, name, password):
        self.name, self.password = name, password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        from asyncua.crypto.permission_rules import User, UserRole
        if username == self.name and password == self.password:
            return User(role=UserRole.User)
        if username is None and certificate is not None:
            # X.509 user identities (no user name): any certificate whose token signature checked
            # out. asyncua also passes the channel certificate with user name tokens.
            return User(role=UserRole.User)
        return None


def make_cert(directory, port):
    """A self-signed server certificate (RSA 2048) with the application URI asyncua checks."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

    cert_path = os.path.join(directory, "server_cert.der")
    key_path = os.path.join(directory, "server_key.pem")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    os.makedirs(directory, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taos test opcua server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("urn:taos:test:opcua-server"),
                    x509.DNSName("localhost"),
                    x509.DNSName("127.0.0.1"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--secure")
    ap.add_argument("--user")
    ap.add_argument("--period", type=int, default=200)
    # After this many seconds: add variables n0..n4 to Plant and delete v0 (point rescans).
    ap.add_argument("--grow-after", type=float, default=0)
    a = ap.parse_args()

    user_manager = None
    if a.user:
        name, password = a.user.split(":", 1)
        user_manager = OneUser(name, password)
    server = Server(user_manager=user_manager) if user_manager else Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{a.port}/taos/test")
    server.set_server_name("taos test opcua server")
    await server.set_application_uri("urn:taos:test:opcua-server")
    if a.secure:
        cert, key = make_cert(a.secure, a.port)
        await server.load_certificate(cert)
        await server.load_private_key(key)
        server.set_security_policy(
            [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt, ua.SecurityPolicyType.Basic256Sha256_Sign]
        )
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if a.user:
        server.set_identity_tokens([ua.UserNameIdentityToken, ua.X509IdentityToken])
    else:
        server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
    ns = await server.register_namespace("urn:taos:test")
    plant = await server.nodes.objects.add_folder(ua.NodeId("Plant", ns), ua.QualifiedName("Plant", ns))
    variables = []
    for i in range(a.count):
        if i % 10 == 9:
            v = await plant.add_variable(
                ua.NodeId(f"v{i}", ns), ua.QualifiedName(f"v{i}", ns), ua.Variant(i, ua.VariantType.Int32)
            )
        else:
            v = await plant.add_variable(
                ua.NodeId(f"v{i}", ns), ua.QualifiedName(f"v{i}", ns), ua.Variant(float(i), ua.VariantType.Double)
            )
        if a.count <= 1000:
            # Node attributes a mapping can turn into tags.
            await v.write_attribute(
                ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(f"Sensor {i}")))
            )
            await v.write_attribute(
                ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(f"variable {i} of the plant")))
            )
        variables.append((i, v))
    async with server:
        print("READY", file=sys.stderr, flush=True)
        tick = 0
        t_start = time.time()
        grown = a.grow_after <= 0
        t_report, ticks_since = time.time(), 0
        next_tick = time.monotonic()
        while True:
            # Keep the period from tick start to tick start (a tick of 10,000 writes takes time).
            next_tick += a.period / 1000.0
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            tick += 1
            if not grown and time.time() - t_start >= a.grow_after:
                grown = True
                for k in range(5):
                    n = await plant.add_variable(
                        ua.NodeId(f"n{k}", ns), ua.QualifiedName(f"n{k}", ns), ua.Variant(float(k), ua.VariantType.Double)
                    )
                    variables.append((1000 + k, n))
                gone = [v for i, v in variables if i == 0]
                variables = [(i, v) for i, v in variables if i != 0]
                await server.delete_nodes(gone)
                print("GREW", file=sys.stderr, flush=True)
            now = datetime.datetime.now(datetime.timezone.utc)
            for i, v in variables:
                if i % 10 == 9:
                    val = ua.Variant(i * 1000 + tick, ua.VariantType.Int32)
                else:
                    val = ua.Variant(i + tick / 1000.0, ua.VariantType.Double)
                await server.write_attribute_value(
                    v.nodeid, ua.DataValue(val, SourceTimestamp=now, ServerTimestamp=now)
                )
            ticks_since += 1
            if time.time() - t_report >= 5:
                rate = ticks_since * len(variables) / (time.time() - t_report)
                print(f"RATE {rate:.0f} values/s written by the server", file=sys.stderr, flush=True)
                t_report, ticks_since = time.time(), 0


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
