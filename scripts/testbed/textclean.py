"""Turning a package's file into one clean document of the testbed corpus, or a reason to drop it.

- decode: UTF-8 only (anything else, or a NUL byte, is binary);
- html_to_text: the visible text of an HTML page (scripts, styles and the head dropped,
  block elements as paragraphs, <pre> kept verbatim);
- normalise: NFC, Unix newlines, no trailing spaces, no control characters but tab and
  newline, at most one blank line in a row;
- reject: the reasons a document is not corpus material (too short, minified, generated,
  mostly non-letters);
- frequent_lines / common_first_block: boilerplate across a source's documents (a site's
  navigation repeated on every page, the licence header atop every source file).
"""
import re
import unicodedata
from collections import Counter
from html.parser import HTMLParser

MIN_CHARS = 256
# A line this long with almost no spaces is minified code or an encoded blob.
LONG_LINE = 400
LONG_LINE_MAX_SPACE_FRACTION = 0.08
# Below this fraction of letters among non-space characters: tables, hex dumps, data.
MIN_LETTER_FRACTION = 0.4
GENERATED = re.compile(
    r"Code generated .{0,80}DO NOT EDIT|@generated|auto-?generated|generated automatically|"
    r"automatically generated|This file (?:is|was) generated|DO NOT EDIT(?: THIS FILE)?[.!]|with gencodec\.py",
    re.IGNORECASE,
)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\ufeff]")
NAV_LINE = re.compile(r"^(?:Prev|Previous|Up|Home|Next)\b[^\n]{0,200}\b(?:Prev|Up|Home|Next)$", re.MULTILINE)


def decode(raw: bytes):
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\f", "\n").replace("\v", "\n")
    text = CONTROL.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def reject(text: str, kind: str):
    """Why the document is dropped, or None to keep it."""
    if len(text) < MIN_CHARS:
        return "short"
    for line in text.split("\n"):
        if len(line) >= LONG_LINE and line.count(" ") < LONG_LINE_MAX_SPACE_FRACTION * len(line):
            return "minified"
    if GENERATED.search(text[:3000]):
        return "generated"
    visible = re.sub(r"\s", "", text)
    letters = sum(1 for c in visible if c.isalpha())
    if letters < MIN_LETTER_FRACTION * len(visible):
        return "non-text"
    return None


class _TextOfHtml(HTMLParser):
    SKIP = {"script", "style", "head", "noscript", "svg", "nav"}
    BLOCK = {"p", "div", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "tr", "table",
             "blockquote", "ul", "ol", "dl", "pre", "br", "hr", "title", "caption", "figure", "header", "footer"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skipping, self.pre = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag not in ("br", "li", "dt", "dd", "tr") else "\n")
            if tag == "li":
                self.parts.append("- ")
            if tag == "pre":
                self.pre += 1
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self.parts.append("\n\n" if tag not in ("li", "dt", "dd", "tr") else "\n")

    def handle_data(self, data):
        if self.skipping:
            return
        # Outside <pre> the markup's line breaks and indentation mean nothing.
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    # The one space that collapsed markup whitespace leaves at the start of a line.
    text = re.sub(r"\n (?=\S)", "\n", text)
    # Sphinx's permalink marks, and page-navigation bars ("Prev  Up <section> Home  Next").
    text = text.replace("\u00b6", "")
    return NAV_LINE.sub("", text)


def frequent_lines(docs: list, min_docs: int) -> set:
    """Lines (stripped, non-empty) found in at least min_docs of the documents: boilerplate."""
    seen = Counter()
    for text in docs:
        seen.update({line.strip() for line in text.split("\n") if line.strip()})
    return {line for line, n in seen.items() if n >= min_docs}


def drop_lines(text: str, lines: set) -> str:
    return "\n".join(line for line in text.split("\n") if line.strip() not in lines)


def first_block(text: str) -> str:
    """The document's opening block: up to its first blank line."""
    return text.split("\n\n", 1)[0]


def common_first_block(docs: list, min_docs: int) -> set:
    """Opening blocks shared by at least min_docs documents (licence headers)."""
    seen = Counter(first_block(t) for t in docs)
    return {b for b, n in seen.items() if n >= min_docs and "\n" in b}


def drop_first_block(text: str, blocks: set) -> str:
    head, _, rest = text.partition("\n\n")
    return rest if head in blocks else text
