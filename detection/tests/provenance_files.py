"""Real files with metadata, made in the tests: EXIF with a GPS position, PNG text as image
generators write it, XMP packets, and C2PA Content Credentials signed with a certificate chain
generated here (c2pa's Builder; ES256)."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass

from PIL import Image, PngImagePlugin

# Distinctive coordinates, so a test can show that none of them is kept anywhere.
GPS_LATITUDE = (37.0, 25.0, 19.07)
GPS_LONGITUDE = (122.0, 5.0, 2.89)
GPS_DIGITS = ("19.07", "2.89", "122")

AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

WEBUI_PARAMETERS = (
    "a photo of a red fox in the snow, highly detailed\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567, Size: 1024x1024, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
)
COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev.safetensors"}},
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "studio portrait of an old sailor", "clip": ["4", 1]},
    },
    "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "model": ["4", 0]}},
}
COMFY_WORKFLOW = {
    "last_node_id": 9,
    "nodes": [
        {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["flux1-dev.safetensors"]},
        {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["studio portrait of an old sailor"]},
    ],
}


def _pixels(size=(64, 48)) -> Image.Image:
    return Image.new("RGB", size, (90, 140, 200))


def jpeg_with_camera_exif(*, gps: bool = True, software: str = "Adobe Photoshop 25.0") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS R5"  # Model
    exif[0x0131] = software  # Software
    exif[0x0132] = "2024:05:02 09:15:00"  # DateTime
    exif[0x013B] = "Jane Photographer"  # Artist: a person's name, never kept
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 18:42:07"  # DateTimeOriginal
    if gps:
        exif.get_ifd(0x8825).update(
            {1: "N", 2: GPS_LATITUDE, 3: "W", 4: GPS_LONGITUDE}  # GPSLatitude(Ref), ...Longitude
        )
    buffer = io.BytesIO()
    _pixels().save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def png_with_text(items: list[tuple[str, str]], *, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in items:
        info.add_text(key, value, zip=compressed)
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def png_webui() -> bytes:
    return png_with_text([("parameters", WEBUI_PARAMETERS), ("Author", "Jane Doe")])


def png_comfyui() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(COMFY_PROMPT), zip=True)  # zTXt
    info.add_itxt("workflow", json.dumps(COMFY_WORKFLOW), zip=True)  # compressed iTXt
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def xmp_packet(
    *,
    digital_source_type: str | None = AI_SOURCE_TYPE,
    creator_tool: str | None = "Adobe Photoshop 25.4 (Macintosh)",
    history: tuple[str, ...] = ("Adobe Photoshop Lightroom Classic 13.2",),
    gps: bool = False,
    creator: str = "Jane Doe",
) -> bytes:
    """An XMP packet as Adobe software writes it: simple properties as attributes, the source
    type as an element, the history as an rdf:Seq of resources."""
    attrs = f' xmp:CreatorTool="{creator_tool}"' if creator_tool else ""
    if gps:
        attrs += ' exif:GPSLatitude="37,25.3178N" exif:GPSLongitude="122,5.0482W"'
    source = (
        f"<Iptc4xmpExt:DigitalSourceType>{digital_source_type}</Iptc4xmpExt:DigitalSourceType>"
        if digital_source_type
        else ""
    )
    events = "".join(
        f'<rdf:li rdf:parseType="Resource"><stEvt:action>saved</stEvt:action>'
        f"<stEvt:softwareAgent>{agent}</stEvt:softwareAgent></rdf:li>"
        for agent in history
    )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        'xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#" '
        'xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"{attrs}>'
        f"<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>"
        f"{source}<xmpMM:History><rdf:Seq>{events}</rdf:Seq></xmpMM:History>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def jpeg_with_xmp(packet: bytes) -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "JPEG", xmp=packet)
    return buffer.getvalue()


def png_with_xmp(packet: bytes, *, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"), zip=compressed)
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def webp_with_xmp(packet: bytes) -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "WEBP", xmp=packet)
    return buffer.getvalue()


# --- C2PA ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningChain:
    chain_pem: str  # the signing certificate, then its CA
    key_pem: str
    root_pem: str  # the CA alone: a trust anchor


SIGNER_ORGANIZATION = "Example Generator Labs"
SIGNER_COMMON_NAME = "Example Generator Signing"


def signing_chain() -> SigningChain:
    """A CA and an end-entity certificate that meet the C2PA signing-certificate profile: not
    self-signed, digitalSignature key usage, an extended key usage C2PA accepts (e-mail
    protection), key identifiers. Nothing trusts this CA unless a test says so."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Test Root CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Test CA"),
        ]
    )

    def usage(*, sign: bool, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(sign=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_COMMON_NAME),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIGNER_ORGANIZATION),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def pem(cert) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningChain(chain_pem=pem(leaf) + pem(ca), key_pem=key_pem, root_pem=pem(ca))


C2PA_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def c2pa_signed(
    chain: SigningChain,
    *,
    fmt: str = "JPEG",
    digital_source_type: str | None = AI_SOURCE_TYPE,
    agent: str = "DALL-E 3",
    edited_by: str | None = None,
    claim_generator: str = "Example Generator",
) -> bytes:
    """An image with embedded Content Credentials: a c2pa.created action by `agent` declaring
    that source type (None: none declared), then a c2pa.edited one by `edited_by` if given;
    signed by `chain` without a timestamp (no network in tests)."""
    import c2pa

    buffer = io.BytesIO()
    _pixels().save(buffer, fmt)
    entry: dict = {"action": "c2pa.created", "softwareAgent": {"name": agent}}
    if digital_source_type:
        entry["digitalSourceType"] = digital_source_type
    actions = [entry]
    if edited_by:
        actions.append({"action": "c2pa.edited", "softwareAgent": {"name": edited_by}})
    manifest = {
        "claim_generator_info": [{"name": claim_generator, "version": "2.1"}],
        "title": f"generated.{fmt.lower()}",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, chain.chain_pem.encode(), chain.key_pem.encode(), None
        )
    )
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, C2PA_CONTENT_TYPES[fmt], io.BytesIO(buffer.getvalue()), out)
    return out.getvalue()


def jpeg_app11(payload: bytes) -> bytes:
    """A plain JPEG with an APP11 segment holding `payload` (a broken manifest store)."""
    buffer = io.BytesIO()
    _pixels().save(buffer, "JPEG")
    data = buffer.getvalue()
    segment = b"\xff\xeb" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:2] + segment + data[2:]
