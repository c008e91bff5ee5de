"""Attachment text: PDF, DOCX and TXT read; every broken, oversized or hostile file a per-file error."""

from __future__ import annotations

import io
import zipfile

import pytest

from core.knowledge import attachments
from core.knowledge.attachments import AttachmentText, extract_attachment_text
from tests.connectors.fake_confluence import minimal_docx, minimal_pdf


def test_pdf_text_comes_from_its_text_layer() -> None:
    result = extract_attachment_text(
        "failover.pdf", minimal_pdf("Promote the replica (pg-02)", "Then fence pg-01")
    )
    assert result == AttachmentText("failover.pdf", "Promote the replica (pg-02)\nThen fence pg-01", None)


def test_a_pdf_without_text_says_it_needs_ocr() -> None:
    result = extract_attachment_text("scan.pdf", minimal_pdf())
    assert result.text is None
    assert (
        result.error == "scan.pdf: not read, the PDF has no text layer (a scan needs OCR, which is not done)"
    )


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4\n1 0 obj <<", b"not a pdf at all", minimal_pdf("x")[:120]])
def test_a_broken_pdf_is_a_clear_error_naming_the_file(data: bytes) -> None:
    result = extract_attachment_text("broken.pdf", data)
    assert result.text is None and result.error is not None
    assert result.error.startswith("broken.pdf: not read, the PDF is damaged or not a PDF (")


def test_docx_paragraphs_tabs_and_breaks() -> None:
    word = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    xml = (
        f'<w:document xmlns:w="{word}"><w:body>'
        '<w:p><w:r><w:t>Step 1:</w:t></w:r><w:r><w:t xml:space="preserve"> drain</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>Host</w:t><w:tab/><w:t>db1</w:t><w:br/><w:t>second line</w:t></w:r></w:p>"
        "<w:p/><w:p/><w:p/><w:p><w:r><w:t>&lt;end&gt;</w:t></w:r></w:p>"
        "</w:body></w:document>"
    )
    result = extract_attachment_text("Checklist.DOCX", minimal_docx(document_xml=xml))
    assert result == AttachmentText("Checklist.DOCX", "Step 1: drain\nHost\tdb1\nsecond line\n\n<end>", None)


def test_a_docx_that_is_not_a_word_document() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.xml", "<x/>")
    result = extract_attachment_text("sheet.docx", buffer.getvalue())
    assert result.error == "sheet.docx: not read, the DOCX has no word/document.xml (not a Word document)"
    result = extract_attachment_text("junk.docx", b"PK\x03\x04 truncated")
    assert result.error is not None and result.error.startswith("junk.docx: not read, the DOCX is damaged")
    bad_xml = minimal_docx(document_xml="<w:document><unclosed></w:document>")
    result = extract_attachment_text("bad.docx", bad_xml)
    assert result.error is not None and result.error.startswith(
        "bad.docx: not read, its document.xml is not well-formed"
    )


def test_a_docx_zip_bomb_is_refused_on_its_declared_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachments, "MAX_UNCOMPRESSED_BYTES", 1_000)
    bomb = minimal_docx("A" * 5_000)  # deflates to a few dozen bytes, unpacks to over 5 kB
    assert len(bomb) < 1_000
    result = extract_attachment_text("bomb.docx", bomb)
    assert result.text is None
    assert result.error is not None and result.error.startswith(
        "bomb.docx: not read, its document.xml unpacks to "
    )
    assert "over the 1,000-byte cap (a zip bomb?)" in result.error


def test_txt_is_utf8_with_replacement_and_no_bom() -> None:
    result = extract_attachment_text("notes.txt", b"\xef\xbb\xbfcaf\xc3\xa9 \xff\r\nline 2\r\n")
    assert result == AttachmentText("notes.txt", "café \ufffd\nline 2", None)


def test_over_the_cap_is_refused_before_parsing() -> None:
    result = extract_attachment_text("big.pdf", b"x" * 101, max_bytes=100)
    assert result == AttachmentText("big.pdf", None, "big.pdf: not read, 101 bytes is over the 100-byte cap")


def test_other_types_are_not_indexed() -> None:
    result = extract_attachment_text("diagram.png", b"\x89PNG")
    assert result.error == "diagram.png: not read, files of type .png are not indexed (PDF, DOCX and TXT are)"


def test_long_text_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachments, "MAX_TEXT_CHARS", 10)
    result = extract_attachment_text("long.txt", b"0123456789abcdef")
    assert result.text == "0123456789\n\n(cut at 10 characters)"
