"""The `provenance` of a detection in the API: what the uploaded file said about itself (EXIF,
PNG text, XMP, C2PA Content Credentials), read before its metadata was stripped. Nested
serializers, so that the OpenAPI schema documents every field."""

from __future__ import annotations

from rest_framework import serializers

from detection.uploads.provenance import SOURCES, provenance_normalized


def _text(help_text: str) -> serializers.CharField:
    return serializers.CharField(read_only=True, allow_null=True, help_text=help_text)


def _texts(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(), read_only=True, help_text=help_text)


class ProvenanceExifSerializer(serializers.Serializer):
    make = _text("Camera maker (EXIF Make).")
    model = _text("Camera model (EXIF Model).")
    software = _text("Software that wrote the file (EXIF Software).")
    datetime_original = _text(
        "When the picture was taken, as the file says (EXIF DateTimeOriginal, "
        '"YYYY:MM:DD HH:MM:SS", no time zone).'
    )
    datetime = _text("When the file was last changed, as it says (EXIF DateTime).")
    user_comment = _text(
        "EXIF UserComment, at most 2,000 characters (Stable Diffusion WebUI writes its prompt "
        "and settings here in JPEG and WebP files)."
    )
    gps_present = serializers.BooleanField(
        read_only=True,
        help_text="Whether the file had a GPS position. The position itself is never kept.",
    )


class ProvenanceXmpSerializer(serializers.Serializer):
    creator_tool = _text("The tool that made the file (xmp:CreatorTool).")
    digital_source_type = _text(
        "IPTC digital source type (Iptc4xmpExt:DigitalSourceType), a URI such as "
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia (made by "
        "generative AI)."
    )
    ai_system = _text("The AI system used, as declared (Iptc4xmpExt:AISystemUsed).")
    ai_system_version = _text("Its version (Iptc4xmpExt:AISystemVersionUsed).")
    ai_prompt = _text("The prompt, as declared (Iptc4xmpExt:AIPromptInformation), cut short.")
    credit = _text('Credit line (photoshop:Credit), e.g. "Made with Google AI".')
    create_date = _text("xmp:CreateDate, as written.")
    modify_date = _text("xmp:ModifyDate, as written.")
    c2pa_manifest_url = _text(
        "Address of Content Credentials kept online (dcterms:provenance); never fetched."
    )
    history_software = _texts("Distinct software agents of the editing history (xmpMM:History).")
    gps_present = serializers.BooleanField(
        read_only=True, help_text="Whether the XMP had a GPS position (never kept)."
    )


class ProvenanceC2paActionSerializer(serializers.Serializer):
    action = _text('The action, e.g. "c2pa.created", "c2pa.edited".')
    digital_source_type = _text(
        'IPTC digital source type code, e.g. "trainedAlgorithmicMedia"; null if none.'
    )
    software_agent = _text("The software that did it, as declared.")


class ProvenanceC2paSerializer(serializers.Serializer):
    present = serializers.BooleanField(read_only=True, help_text="Always true.")
    readable = serializers.BooleanField(
        read_only=True,
        help_text="False when the file carries credentials that could not be read (see errors).",
    )
    validation_state = _text(
        '"Trusted" (intact, signer on the trust list this server uses), "Valid" (intact: '
        'signature and hashes check out, signer not on a trust list), "Invalid"; null when '
        "unreadable."
    )
    valid = serializers.BooleanField(
        read_only=True, help_text="The credentials are intact: Valid or Trusted."
    )
    trusted = serializers.BooleanField(
        read_only=True, help_text="The signer is on the trust list this server uses."
    )
    errors = _texts('Validation failures, as "code: explanation".')
    signer = _text("The signing certificate's organisation.")
    signer_common_name = _text("The signing certificate's common name.")
    signed_at = _text("When it was signed, from a trusted timestamp; null without one.")
    claim_generator = _text("The software that wrote the credentials.")
    title = _text("The title the credentials give the asset.")
    actions = ProvenanceC2paActionSerializer(
        many=True, read_only=True, help_text="The actions of the active manifest."
    )
    ai_generated = serializers.BooleanField(
        read_only=True,
        help_text=(
            "An action declares generative AI (digital source type trainedAlgorithmicMedia or "
            "compositeWithTrainedAlgorithmicMedia), in this manifest or an ingredient's."
        ),
    )
    ai_source_type = _text("The digital source type of that declaration.")
    ai_generator = _text("The software agent of that declaration, if named.")
    ai_in_ingredient = serializers.BooleanField(
        read_only=True,
        help_text="The declaration is in an ingredient's manifest (an earlier version).",
    )


class ProvenanceAiDeclarationSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=[(s, s) for s in SOURCES], read_only=True, help_text="Where the file says it."
    )
    generator = _text("The generator named, e.g. Midjourney; null when not named.")
    detail = serializers.CharField(read_only=True, help_text="What the file says, in a sentence.")


class ProvenanceEditingSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=[(s, s) for s in SOURCES], read_only=True, help_text="Where the file says it."
    )
    name = serializers.CharField(read_only=True, help_text='The software, e.g. "Adobe Photoshop".')


class ProvenanceSerializer(serializers.Serializer):
    recorded = serializers.BooleanField(
        read_only=True,
        help_text=(
            "False for detections uploaded before metadata was read: then nothing is known "
            "and every other field is empty."
        ),
    )
    version = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Version of this record's shape; null if none."
    )
    exif = ProvenanceExifSerializer(
        read_only=True, allow_null=True, help_text="EXIF fields; null when the file had none."
    )
    png_text = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text=(
            "PNG text chunks, keyword to text (at most 2,000 characters each; a ComfyUI graph as "
            "a short digest). Keys naming people (Author, Artist) are not kept."
        ),
    )
    xmp = ProvenanceXmpSerializer(
        read_only=True, allow_null=True, help_text="Selected XMP fields; null when none."
    )
    c2pa = ProvenanceC2paSerializer(
        read_only=True,
        allow_null=True,
        help_text="C2PA Content Credentials embedded in the file; null when it has none.",
    )
    ai_declarations = ProvenanceAiDeclarationSerializer(
        many=True,
        read_only=True,
        help_text=(
            "Where the file declares an AI generator. Separate from the model's verdict; "
            "metadata can be written by anyone, and its absence proves nothing."
        ),
    )
    editing_software = ProvenanceEditingSerializer(
        many=True, read_only=True, help_text="Editing software the file names."
    )
    errors = _texts("What could not be read. An upload is never refused for its metadata.")

    def to_representation(self, instance):
        # Stored records of any version, and {} of old detections, in the current shape.
        return super().to_representation(provenance_normalized(instance))
